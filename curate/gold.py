"""How good are the pseudo-labels? Tables over a vote output of a set with gold answers.

    summary = gold_summary(questions)          # pseudo-label accuracy, trace agreement, ...
    accuracy_table(questions, "pass_rate")     # the same per teacher pass-rate bucket (or "difficulty")
    vote_share_table(questions)                # accuracy per vote-share bin and from each bin up

The pseudo-label accuracy is the share of labeled (status ``ok``) questions with a readable gold whose
majority answer the gold accepts (``gold_agrees``: ``verify(gold, majority answer)``, one direction, as
``eval`` scores). The trace agreement is the share of their traces whose vote reward equals the gold
reward; a disagreement is a false positive (rewarded 1, wrong by the gold) or a false negative (rewarded
0, right by the gold). Pure functions of the ``questions`` table (polars), shared by ``vote``'s summary
and ``stats``.
"""

from __future__ import annotations

import polars as pl

from .buckets import RATE_EDGES, assign_buckets

ACCURACY = "pseudo-label accuracy (ok questions with a gold)"
SHARE_EDGES = (0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


def has_gold(questions: pl.DataFrame) -> bool:
    return "gold_agrees" in questions.columns


def _scored(questions: pl.DataFrame) -> pl.DataFrame:
    """Labeled questions with a readable gold, with their false positives and negatives."""
    scored = questions.filter(pl.col("gold_agrees").is_not_null())
    wrong = pl.col("n_samples") - pl.col("rewards_agreeing_gold")
    excess = pl.col("majority_votes") - pl.col("gold_votes")  # = false positives - false negatives
    return scored.with_columns(
        ((wrong + excess) // 2).alias("false_positives"), ((wrong - excess) // 2).alias("false_negatives")
    )


def _aggregate() -> list[pl.Expr]:
    return [
        pl.len().alias("questions"),
        pl.col("gold_agrees").sum().alias("majority_right"),
        pl.col("gold_agrees").mean().alias("pseudo_label_accuracy"),
        pl.col("n_samples").sum().alias("traces"),
        pl.col("rewards_agreeing_gold").sum().alias("traces_agreeing"),
        (pl.col("rewards_agreeing_gold").sum() / pl.col("n_samples").sum()).alias("trace_agreement"),
        pl.col("false_positives").sum(),
        pl.col("false_negatives").sum(),
    ]


def gold_summary(questions: pl.DataFrame) -> dict[str, int | float]:
    """The counters of the summary: gold coverage, pseudo-label accuracy, trace agreement."""
    status = dict(questions.group_by("gold_status").len().iter_rows())
    overall = _scored(questions).select(_aggregate()).row(0, named=True)
    counts: dict[str, int | float] = {
        "questions with a readable gold": status.get("ok", 0),
        "  ... without a gold": status.get("missing", 0),
        "  ... gold unreadable (math-verify reads no math)": status.get("unreadable", 0),
        "  ... samples disagree on the gold": status.get("conflicting", 0),
        "ok questions with a gold": overall["questions"],
        "  ... majority answer right": overall["majority_right"] or 0,
    }
    if overall["questions"]:
        counts[ACCURACY] = overall["pseudo_label_accuracy"]
        counts["trace agreement: reward = gold reward"] = overall["trace_agreement"]
        counts["  ... rewarded 1, wrong by the gold"] = overall["false_positives"]
        counts["  ... rewarded 0, right by the gold"] = overall["false_negatives"]
    return counts


def accuracy_table(questions: pl.DataFrame, by: str) -> pl.DataFrame:
    """Pseudo-label accuracy and trace agreement per teacher ``pass_rate`` bucket (hard < 0.5 <= medium <
    1 <= easy) or per dataset ``difficulty``, then overall (``(all)``)."""
    scored = _scored(questions)
    if by == "pass_rate":
        scored = assign_buckets(scored, "pass_rate", RATE_EDGES).with_columns(pl.col("bucket").alias("group"))
    else:
        scored = scored.with_columns(pl.col(by).cast(pl.String).fill_null("n/a").alias("group"))
    per = scored.group_by("group").agg(_aggregate()).sort("group")
    overall = scored.select(_aggregate()).with_columns(pl.lit("(all)").alias("group"))
    table = pl.concat([per, overall.select(per.columns)], how="vertical_relaxed")
    return table.select(pl.lit(by).alias("by"), pl.all())


def display_table(table: pl.DataFrame, label: str) -> pl.DataFrame:
    """``accuracy_table`` with short column names, for a terminal summary."""
    names = {
        "group": label,
        "majority_right": "right",
        "pseudo_label_accuracy": "accuracy",
        "traces_agreeing": "agree",
        "trace_agreement": "agreement",
        "false_positives": "false +",
        "false_negatives": "false -",
    }
    return table.drop("by").rename(names)


def _share_bin(edges: tuple[float, ...]) -> pl.Expr:
    share = pl.col("vote_share")
    expr = pl.when(share < edges[0]).then(pl.lit(f"< {edges[0]:g}"))
    for lo, hi in zip(edges, edges[1:]):
        expr = expr.when(share < hi).then(pl.lit(f"[{lo:g}, {hi:g})"))
    return expr.otherwise(pl.lit(f"{edges[-1]:g}"))


def vote_share_table(questions: pl.DataFrame, edges: tuple[float, ...] = SHARE_EDGES) -> pl.DataFrame:
    """Per vote-share bin (majority votes / answered traces): questions, how many majorities are right,
    the accuracy; and the accuracy over every question at or above the bin's lower edge (``from_here``):
    the vote share from which a user may trust the majority."""
    labels = [f"< {edges[0]:g}", *(f"[{lo:g}, {hi:g})" for lo, hi in zip(edges, edges[1:])), f"{edges[-1]:g}"]
    lower = [0.0, *edges]
    scored = _scored(questions).with_columns(_share_bin(edges).alias("vote_share_bin"))
    per = scored.group_by("vote_share_bin").agg(
        pl.len().alias("questions"), pl.col("gold_agrees").sum().alias("majority_right")
    )
    table = (
        pl.DataFrame({"vote_share_bin": labels, "lower_edge": lower})
        .join(per, on="vote_share_bin", how="left")
        .with_columns(pl.col("questions", "majority_right").fill_null(0).cast(pl.Int64))
    )
    from_here = (
        table.reverse()
        .with_columns(
            pl.col("questions").cum_sum().alias("questions_from_here"),
            pl.col("majority_right").cum_sum().alias("right_from_here"),
        )
        .reverse()
    )
    return from_here.with_columns(
        (pl.col("majority_right") / pl.col("questions")).fill_nan(None).alias("accuracy"),
        (pl.col("right_from_here") / pl.col("questions_from_here"))
        .fill_nan(None)
        .alias("accuracy_from_here"),
    )
