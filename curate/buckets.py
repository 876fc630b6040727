"""Difficulty buckets of questions, shared by ``stats`` (what the data holds) and ``sample`` (what to take).

    assign_buckets(questions, by="pass_rate", edges=(0.5, 1.0))   # adds a ``bucket`` column

A measure and increasing edges make ``len(edges) + 1`` half-open buckets ``[lo, hi)``; with the default
edges they get names. Rates (teacher pass rate, teacher vote share, base-model pass rate, and on a set with
gold answers the teacher's pass rate against the gold, ``gold_pass_rate``): hard < 0.5 <=
medium < 1.0 <= easy, so "easy" is exactly the all-positive / always-solved questions. The dataset's own
``difficulty`` (1-10 in OpenThoughts3, higher is harder): easy < 4 <= medium < 7 <= hard. A question
without a value (tie, no answer, no base rollouts) is ``unlabeled``.
"""

from __future__ import annotations

import polars as pl

from .io.errors import InputError

RATE_EDGES = (0.5, 1.0)
DEFAULT_EDGES = {
    "pass_rate": RATE_EDGES,
    "vote_share": RATE_EDGES,
    "base_pass_rate": RATE_EDGES,
    "gold_pass_rate": RATE_EDGES,
    "difficulty": (4, 7),
}
_DEFAULT_NAMES = {"difficulty": ["easy", "medium", "hard"]}
UNLABELED = "unlabeled"


def bucket_labels(edges: tuple[float, ...], by: str) -> list[str]:
    """Names of the ``len(edges) + 1`` buckets: words for the default edges, ``[lo, hi)`` otherwise."""
    if by in DEFAULT_EDGES and tuple(edges) == DEFAULT_EDGES[by]:
        return _DEFAULT_NAMES.get(by, ["hard", "medium", "easy"])
    bounds = ["-inf", *map(str, edges), "inf"]
    return [f"[{lo}, {hi})" for lo, hi in zip(bounds, bounds[1:])]


def check_measure(by: str) -> tuple[float, ...]:
    """The default edges of a measure, or a one-line error listing the measures."""
    if by not in DEFAULT_EDGES:
        raise InputError(f"--bucket-by must be one of {', '.join(DEFAULT_EDGES)}, got {by}")
    return DEFAULT_EDGES[by]


def assign_buckets(questions: pl.DataFrame, by: str, edges: tuple[float, ...] | None = None) -> pl.DataFrame:
    """``questions`` with a ``bucket`` column computed from column ``by`` (nulls -> ``unlabeled``)."""
    edges = tuple(edges or check_measure(by))
    if list(edges) != sorted(edges):
        raise InputError(f"--edges must be increasing, got {','.join(map(str, edges))}")
    if by not in questions.columns:
        hint = (
            " (the vote input had no gold: filter a set with gold answers)" if by == "gold_pass_rate" else ""
        )
        raise InputError(f"cannot bucket by {by!r}: the questions carry no such column{hint}")
    labels = bucket_labels(edges, by)
    value = pl.col(by).cast(pl.Float64)
    bucket = pl.when(value.is_null()).then(pl.lit(UNLABELED))
    for edge, label in zip(edges, labels):
        bucket = bucket.when(value < edge).then(pl.lit(label))
    return questions.with_columns(bucket.otherwise(pl.lit(labels[-1])).alias("bucket"))
