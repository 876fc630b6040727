"""``offcurate stats``: all-positive statistics, difficulty buckets and figures from a vote output.

    offcurate stats -i data/voted -o data/stats [--bucket-by pass_rate --edges 0.5,1.0]
                    [--base-rollouts data/rollouts]      # Figure 2: base pass rate on all-positive groups

Writes ``by_group.parquet`` (per source x difficulty and overall), ``pass_rate_hist.parquet``,
``buckets.parquet`` (one bucket per question), PNG figures, and with ``--base-rollouts`` also
``base_pass_rate.parquet`` and ``figure2.png``. On a set with gold answers also ``gold_accuracy.parquet``
(pseudo-label accuracy and trace agreement per teacher pass-rate bucket and per difficulty),
``gold_by_vote_share.parquet`` and ``gold_accuracy_vs_vote_share.png``; where the set ships its own
per-trace verdicts, ``verdict_agreement.parquet`` and ``verdict_disagreements.parquet``.
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from ..rollout.reader import read_rollout_answers, run_jobs
from .answers.equivalence import ScoreAgainstGold
from .buckets import assign_buckets, check_measure
from .gold import accuracy_table, gold_summary, has_gold, vote_share_table
from .io.card import write_card
from .io.errors import InputError
from .io.report import StageReport
from .io.shards import (
    atomic_output,
    check_columns,
    check_output,
    is_bool,
    is_float,
    is_integer,
    is_string,
    list_shards,
    read_table,
)

QUESTION_COLUMNS = {
    "question_id": ("string", is_string),
    "source": ("string", is_string),
    "difficulty": ("int64 (nullable)", is_integer),
    "status": ("string", is_string),
    "n_samples": ("int64", is_integer),
    "pass_rate": ("float64 (nullable)", is_float),
    "majority_answer": ("string (nullable)", is_string),
    "all_positive": ("bool", is_bool),
}
FIG2_BINS = (0.0, 0.25, 0.5, 0.75, 1.0)
STATS_MEASURES = ("pass_rate", "vote_share", "difficulty", "gold_pass_rate")  # base_pass_rate: `sample`


def read_questions(voted: Path) -> pl.DataFrame:
    """The ``questions`` table of a vote output (slices under one folder are concatenated)."""
    shards = [p for p in list_shards(voted) if p.parent.name == "questions"]
    if not shards:
        raise InputError(f"{voted}: no questions/*.parquet inside (is this an `offcurate vote` output?)")
    frames = []
    for path in shards:
        table = read_table(path)
        check_columns(path, table.schema, QUESTION_COLUMNS)
        frames.append(pl.from_arrow(table))
    questions = pl.concat(frames, how="diagonal_relaxed")
    if questions.height == 0:
        raise InputError(f"{voted}: the questions table is empty")
    return questions


def group_stats(questions: pl.DataFrame) -> pl.DataFrame:
    """Per (source, difficulty) and overall: status counts, all-positive count and share of ok questions."""
    aggs = [
        pl.len().alias("questions"),
        (pl.col("status") == "ok").sum().alias("ok"),
        (pl.col("status") == "tie").sum().alias("tie"),
        (pl.col("status") == "no_answer").sum().alias("no_answer"),
        pl.col("all_positive").sum().alias("all_positive"),
        pl.col("pass_rate").mean().alias("mean_pass_rate"),
    ]
    per_group = questions.group_by("source", "difficulty").agg(aggs).sort("source", "difficulty")
    overall = questions.select(aggs).with_columns(
        pl.lit("(all)").alias("source"), pl.lit(None, pl.Int64).alias("difficulty")
    )
    table = pl.concat([per_group, overall.select(per_group.columns)], how="vertical_relaxed")
    return table.with_columns(
        (pl.col("all_positive") / pl.col("ok")).fill_nan(None).alias("all_positive_fraction")
    )


def pass_rate_histogram(questions: pl.DataFrame) -> pl.DataFrame:
    """How many ok questions have each teacher pass rate (k/G values, so exact counts, not bins)."""
    ok = questions.filter(pl.col("status") == "ok")
    return ok.group_by(pl.col("pass_rate").round(4)).agg(pl.len().alias("questions")).sort("pass_rate")


def score_base_rollouts(
    questions: pl.DataFrame, folder: Path, workers: int, timeout: float | None
) -> pl.DataFrame:
    """Per ok question with rollouts: how often the base model's answer matches the majority answer."""
    rollouts = read_rollout_answers(folder, "stats: read base rollouts")
    grouped = (
        rollouts.group_by("question_id", maintain_order=True)
        .agg(pl.col("answer"))
        .join(questions.filter(pl.col("status") == "ok"), on="question_id", how="inner")
    )
    if grouped.height == 0:
        raise InputError(f"{folder}: no rollout matches a labeled (status ok) question of the vote output")
    tasks = (
        (i, [row["majority_answer"], *row["answer"]]) for i, row in enumerate(grouped.iter_rows(named=True))
    )
    scores, _ = run_jobs(
        ScoreAgainstGold(), tasks, grouped.height, workers, timeout, "stats: score base rollouts"
    )
    return grouped.select(
        "question_id",
        "source",
        "difficulty",
        pl.col("pass_rate").alias("teacher_pass_rate"),
        pl.col("all_positive").alias("teacher_all_positive"),
        pl.col("answer").list.len().alias("base_samples"),
        pl.Series("base_pass_rate", [sum(s) / len(s) for s in scores], dtype=pl.Float64),
    )


def figure2_table(base: pl.DataFrame) -> pl.DataFrame:
    """Base pass-rate distribution over the teacher-all-positive questions (the blog's Figure 2)."""
    positive = base.filter(pl.col("teacher_all_positive"))
    labels = ["0"] + [f"({lo:g}, {hi:g}]" for lo, hi in zip(FIG2_BINS, FIG2_BINS[1:])]
    rate = pl.col("base_pass_rate")
    bucket = pl.when(rate == 0).then(pl.lit(labels[0]))
    for hi, label in zip(FIG2_BINS[1:], labels[1:]):
        bucket = bucket.when(rate <= hi).then(pl.lit(label))
    counts = positive.group_by(bucket.alias("base_pass_rate")).agg(pl.len().alias("questions"))
    return pl.DataFrame({"base_pass_rate": labels}).join(counts, on="base_pass_rate", how="left").fill_null(0)


def run_stats(
    input_dir: Path,
    output: Path,
    bucket_by: str = "pass_rate",
    edges: tuple[float, ...] | None = None,
    base_rollouts: Path | None = None,
    workers: int | None = None,
    timeout: float | None = 2.0,
    overwrite: bool = False,
) -> StageReport:
    from . import figures

    if bucket_by not in STATS_MEASURES:
        raise InputError(f"--bucket-by must be one of {', '.join(STATS_MEASURES)}, got {bucket_by}")
    inputs = (input_dir,) if base_rollouts is None else (input_dir, base_rollouts)
    check_output(output, overwrite, inputs)
    report = StageReport("stats", output=str(output))
    questions = read_questions(input_dir)
    groups = group_stats(questions)
    hist = pass_rate_histogram(questions)
    buckets = assign_buckets(questions, bucket_by, edges or check_measure(bucket_by)).select(
        "question_id", "source", "difficulty", "status", "pass_rate", "all_positive", "bucket"
    )
    base = None
    if base_rollouts is not None:
        base = score_base_rollouts(questions, base_rollouts, workers or os.cpu_count() or 1, timeout)

    tables = {"by_group": groups, "pass_rate_hist": hist, "buckets": buckets}
    if base is not None:
        tables.update(base_pass_rate=base, figure2=figure2_table(base))
    gold = has_gold(questions)
    if gold:
        from .verdicts import read_verdicts

        by = [accuracy_table(questions, "pass_rate"), accuracy_table(questions, "difficulty")]
        tables.update(gold_accuracy=pl.concat(by), gold_by_vote_share=vote_share_table(questions))
        verdicts = read_verdicts(input_dir)
        if verdicts is not None:
            tables.update(verdict_agreement=verdicts[0], verdict_disagreements=verdicts[1])
    with atomic_output(output, overwrite, inputs=inputs) as tmp:
        for name, table in tables.items():
            table.write_parquet(tmp / f"{name}.parquet")
        figures.all_positive_by_difficulty(groups, tmp / "all_positive_by_difficulty.png")
        figures.pass_rate_histogram(hist, tmp / "pass_rate_hist.png")
        if base is not None:
            figures.figure2(tables["figure2"], tmp / "figure2.png")
        if gold:
            from .gold_figure import accuracy_vs_vote_share

            accuracy_vs_vote_share(tables["gold_by_vote_share"], tmp / "gold_accuracy_vs_vote_share.png")
        configs = {name: (f"{name}.parquet", table.to_arrow().schema) for name, table in tables.items()}
        write_card(tmp, "Curation statistics (offcurate stats)", STATS_CARD + GOLD_CARD * gold, configs)

    overall = groups.filter(pl.col("source") == "(all)").row(0, named=True)
    report.counts.update(
        {
            "questions": overall["questions"],
            "status ok": overall["ok"],
            "status tie": overall["tie"],
            "status no_answer": overall["no_answer"],
            "all-positive": overall["all_positive"],
            "  ... their trajectories (A = 0 under plain GRPO)": int(
                questions.filter(pl.col("all_positive"))["n_samples"].sum()
            ),
            "all-positive / ok": overall["all_positive_fraction"] or 0.0,
            "mean teacher pass rate": overall["mean_pass_rate"] or 0.0,
        }
    )
    for row in buckets.group_by("bucket").len().sort("bucket").iter_rows():
        report.counts[f"bucket {row[0]}"] = row[1]
    if gold:
        report.counts.update(gold_summary(questions))
        if "verdict_agreement" in tables:
            for row in tables["verdict_agreement"].iter_rows(named=True):
                name = f"agreement of {row['offcurate']} with the dataset's verdicts"
                report.counts[name] = row["agreement"] if row["agreement"] is not None else "n/a"
            report.counts["  ... traces where the gold reward and the dataset disagree"] = tables[
                "verdict_disagreements"
            ].height
    if base is not None:
        positive = base.filter(pl.col("teacher_all_positive"))
        report.counts["all-positive with base rollouts"] = positive.height
        report.counts["  ... base model not always right"] = int((positive["base_pass_rate"] < 1).sum())
        report.counts["  ... base model never right"] = int((positive["base_pass_rate"] == 0).sum())
        report.counts["  ... mean base pass rate"] = float(positive["base_pass_rate"].mean() or 0.0)
    return report.finish()


STATS_CARD = """
`by_group.parquet`: per (source, difficulty) and an overall row (source `(all)`): questions by status, the
number of all-positive questions (every teacher trace agrees with the majority) and their share of the `ok`
questions, the mean teacher pass rate. `pass_rate_hist.parquet`: ok questions per teacher pass rate.
`buckets.parquet`: one difficulty bucket per question. With base rollouts: `base_pass_rate.parquet` and
`figure2.parquet`/`figure2.png`: how often the base model is right on questions the teacher always gets right.
Each table is a config of its own name: `datasets.load_dataset(THIS_FOLDER, "buckets", split="train")`.
"""
GOLD_CARD = """
The vote output carries the dataset's gold answers. `gold_accuracy.parquet`: per teacher pass-rate bucket
(`by` = `pass_rate`) and per dataset difficulty (`by` = `difficulty`), then overall (`(all)`): labeled
questions with a readable gold, how many majority answers the gold accepts (`pseudo_label_accuracy`), and
how many of their traces have a vote reward equal to the gold reward (`trace_agreement`; the others are
false positives or false negatives). `gold_by_vote_share.parquet` and `gold_accuracy_vs_vote_share.png`:
the accuracy per vote-share bin and at or above it. Where the set ships per-trace verdicts:
`verdict_agreement.parquet` (offcurate's gold reward and vote reward against them) and
`verdict_disagreements.parquet` (every trace where the gold reward and the dataset disagree, with its end).
"""
