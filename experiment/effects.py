"""The blog's claims per model: the teacher traces' log-probability, pass@1 by base pass rate.

    RUN/teacher-logprobs/NAME/   traces.parquet, summary.parquet      (recipe key ``teacher_logprobs``)
    RUN/effects/                 teacher_logprobs.parquet, by_base_pass.parquet
    for table in effects_tables(Path("runs/toy/effects")): console.print(table)

Why: the all-positive bias is about questions every teacher trace gets right. ``--bias 0`` gives them
A = 0, ``--bias b`` trains them; how much of those traces a model took in is their mean log-probability
per token under it (``train/trace_logprob.py``: the trainer's own tokenisation and packed forward), set
beside the mixed groups' right and wrong traces. Figure 2 is the base model's pass rate on those questions
(from the base rollouts); where a benchmark holds them too (the toy's ``trained-sum``), each model's pass@1
there is split by that base pass rate, so the effect is read where the base is right only sometimes. The
base pass rate comes from the base rollouts, samples independent of the eval's, so choosing the questions
does not bias the base's own score there.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
from rich.table import Table

from ..curate.io.card import write_card
from ..curate.io.report import frame_table

BASE_PASS_BUCKETS = ("never (0)", "sometimes (0-1)", "always (1)")


def teacher_logprob_table(folders: dict[str, Path]) -> pl.DataFrame:
    """One row per (model, kind of trace) from each model's ``summary.parquet``, models in the order given."""
    frames = [
        pl.read_parquet(folder / "summary.parquet").select(pl.lit(name).alias("model"), pl.all())
        for name, folder in folders.items()
    ]
    return pl.concat(frames) if frames else pl.DataFrame()


def base_pass_bucket(rate: pl.Expr) -> pl.Expr:
    return (
        pl.when(rate == 0)
        .then(pl.lit(BASE_PASS_BUCKETS[0]))
        .when(rate < 1)
        .then(pl.lit(BASE_PASS_BUCKETS[1]))
        .otherwise(pl.lit(BASE_PASS_BUCKETS[2]))
    )


def by_base_pass(evals: dict[str, Path], voted: Path, figure2: Path) -> pl.DataFrame:
    """pass@1 of each model on the benchmark questions that are teacher-all-positive questions of the vote
    output, per base pass-rate bucket (from the base rollouts); empty when no benchmark holds them."""
    base = pl.read_parquet(figure2 / "base_pass_rate.parquet").filter(pl.col("teacher_all_positive"))
    questions = pl.read_parquet(voted / "questions" / "*.parquet", columns=["question_id", "question"])
    rates = base.join(questions, on="question_id").select("question", "base_pass_rate", "base_samples")
    frames = []
    for name, folder in evals.items():
        results = pl.read_parquet(folder / "results.parquet", columns=["benchmark", "question", "pass_at_1"])
        frames.append(results.join(rates, on="question").select(pl.lit(name).alias("model"), pl.all()))
    joined = pl.concat(frames)
    if joined.height == 0:
        return pl.DataFrame()
    order = {b: i for i, b in enumerate(BASE_PASS_BUCKETS)}
    models = {m: i for i, m in enumerate(evals)}
    return (
        joined.group_by("benchmark", "model", base_pass_bucket(pl.col("base_pass_rate")).alias("base_pass"))
        .agg(pl.len().alias("questions"), pl.col("pass_at_1").mean())
        .sort(
            pl.col("benchmark"),
            pl.col("base_pass").replace_strict(order, return_dtype=pl.Int64),
            pl.col("model").replace_strict(models, return_dtype=pl.Int64),
        )
    )


EFFECTS_CARD = """\
`teacher_logprobs.parquet`: per model (the base, then each arm) and kind of teacher trace (all-positive,
mixed-right, mixed-wrong), the traces scored, their tokens, the mean log-probability and probability per
token, and the share of tokens under probability 0.1. `by_base_pass.parquet`: per benchmark that holds
teacher-all-positive training questions, each model's pass@1 on them by the base model's pass rate in
the base rollouts (never, sometimes, always right).
"""


def write_effects(
    tmp: Path, logprobs: dict[str, Path], evals: dict[str, Path], voted: Path, figure2: Path
) -> None:
    """Write whichever tables the run has the inputs for into ``tmp``, with a dataset card."""
    tables = {}
    if logprobs:
        tables["teacher_logprobs"] = teacher_logprob_table(logprobs)
    if (figure2 / "base_pass_rate.parquet").is_file():
        table = by_base_pass(evals, voted, figure2)
        if table.height:
            tables["by_base_pass"] = table
    for name, table in tables.items():
        table.write_parquet(tmp / f"{name}.parquet")
    if tables:
        configs = {name: (f"{name}.parquet", t.to_arrow().schema) for name, t in tables.items()}
        write_card(tmp, "What the arms learnt (offcurate experiment)", EFFECTS_CARD, configs)


def effects_tables(folder: Path) -> list[Table]:
    """The effects as printed at the end of a run: teacher-trace log-probs, pass@1 by base pass rate."""
    out = []
    logprobs = folder / "teacher_logprobs.parquet"
    if logprobs.is_file():
        frame = pl.read_parquet(logprobs).select(
            "model", "kind", "traces", "logp_per_token", "prob_per_token", "low_prob_share"
        )
        out.append(frame_table(frame, "Teacher traces: mean log-prob per token under each model"))
    by_pass = folder / "by_base_pass.parquet"
    if by_pass.is_file():
        title = "pass@1 on teacher-all-positive questions, by the base model's pass rate (Figure 2)"
        out.append(frame_table(pl.read_parquet(by_pass), title))
    return out
