"""``offcurate eval``: pass@1 and maj@k of a model's sampled responses on benchmarks with gold answers.

    offcurate eval --benchmark math500.jsonl --benchmark aime24.jsonl --responses runs/rollouts -o runs/eval
    offcurate eval --compare runs/eval-base runs/eval-grpo -o runs/compare      # deltas + radar chart

Responses are rollout-format shards (``question_id`` or ``question``, ``sample_idx``, ``response``) and are
matched to benchmark problems by ``question_id``; problems without responses are kept in the results
(status ``no_responses``) and counted, responses of no benchmark problem are counted as dropped. Answers
are extracted as ``vote`` extracts them, and a sample is correct when math-verify's ``verify(gold, answer)``
holds, one direction (``scoring.ScoreProblem`` in the verify pool).

Python entry point (the hook for generation: sample the benchmark questions into a folder, then score)::

    benchmarks = load_benchmarks([Path("math500.jsonl")])
    questions = benchmark_questions(benchmarks)        # benchmark, question_id, question to sample for
    ...generate rollout shards for `questions` into tmp...
    evaluate(benchmarks, tmp, Path("runs/eval")).print()

Writes ``results.parquet`` (one row per problem), ``summary.parquet`` and ``summary.json`` (one row per
benchmark) and a dataset card.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich.table import Table

from ..curate.answers.equivalence import DEFAULT_TIMEOUT
from ..curate.answers.scoring import ScoreProblem
from ..curate.io.card import write_card
from ..curate.io.errors import InputError
from ..curate.io.report import StageReport, console
from ..curate.io.shards import atomic_output, check_output
from ..rollout.reader import read_rollout_answers, run_jobs
from .benchmarks import Benchmark, load_benchmarks

NO_RESPONSES = "no_responses"  # status of a problem no response was given for


@dataclass
class EvalRun:
    """What ``evaluate`` returns: the per-benchmark summary (as written) and the stage report."""

    summary: pl.DataFrame
    report: StageReport

    def print(self) -> None:
        console.print(summary_table(self.summary))
        self.report.print()


def match_responses(problems: pl.DataFrame, answers: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    """Problems (in order) with their samples' ``answer``/``finished``/``finish_reason`` lists (null: no
    responses), and the number of responses whose question is in no benchmark."""
    grouped = answers.group_by("question_id", maintain_order=True).agg("answer", "finished", "finish_reason")
    joined = (
        problems.with_row_index("_order")
        .join(grouped, on="question_id", how="left")
        .sort("_order")
        .drop("_order")
    )
    unmatched = answers.filter(~pl.col("question_id").is_in(problems["question_id"].implode())).height
    return joined, unmatched


def score_problems(joined: pl.DataFrame, workers: int, timeout: float | None) -> tuple[pl.DataFrame, int]:
    """Per-problem results from ``match_responses``'s table; also how many workers the watchdog killed."""
    scored = joined.filter(pl.col("answer").is_not_null())
    tasks = ((i, [row["gold"], *row["answer"]]) for i, row in enumerate(scored.iter_rows(named=True)))
    scores, killed = run_jobs(ScoreProblem(), tasks, scored.height, workers, timeout, "eval: score")
    by_row = iter(scores)
    rows = []
    for row in joined.iter_rows(named=True):
        score = next(by_row) if row["answer"] is not None else None
        rows.append(
            {
                "benchmark": row["benchmark"],
                "question_id": row["question_id"],
                "question": row["question"],
                "gold": row["gold"],
                "samples": len(row["answer"] or []),
                "answers": row["answer"] or [],
                "finished": row["finished"] or [],
                "finish_reason": row["finish_reason"] or [],
                "correct": score.correct if score else [],
                "status": score.status if score else NO_RESPONSES,
                "majority_answer": score.majority_answer if score else None,
                "pass_at_1": score.pass_at_1 if score else None,
                "maj_at_k": score.maj_at_k if score else None,
                "timeouts": score.pathological if score else 0,
            }
        )
    return pl.DataFrame(rows, schema=RESULT_SCHEMA), killed


RESULT_SCHEMA = {
    "benchmark": pl.String,
    "question_id": pl.String,
    "question": pl.String,
    "gold": pl.String,
    "samples": pl.Int64,
    "answers": pl.List(pl.String),
    "finished": pl.List(pl.Boolean),
    "finish_reason": pl.List(pl.String),
    "correct": pl.List(pl.Boolean),
    "status": pl.String,
    "majority_answer": pl.String,
    "pass_at_1": pl.Float64,
    "maj_at_k": pl.Float64,
    "timeouts": pl.Int64,
}


CI_Z = 1.959964  # the normal quantile of a two-sided 95% interval


def summarize(results: pl.DataFrame, names: list[str]) -> pl.DataFrame:
    """One row per benchmark (in the order given): problems, how many were scored, k, pass@1, maj@k.

    Means are over the problems that have responses; ``missing`` says how many had none.
    ``pass_at_1_ci95`` is the half-width of pass@1's 95% interval over problems (normal approximation,
    1.96 standard errors of the per-problem pass@1; null below two problems): it says how far a
    difference between two models can be noise from the choice of problems. The chain checks:
    ``end_of_turn`` is the share of samples whose generation ended with the end-of-turn token rather
    than at the token limit (null when the responses carry no ``finish_reason``), ``answered`` the
    share with an answer the extractor reads."""
    scored = pl.col("status") != NO_RESPONSES
    reasons = pl.col("finish_reason").explode()
    table = results.group_by("benchmark").agg(
        pl.len().alias("problems"),
        scored.sum().alias("scored"),
        (~scored).sum().alias("missing"),
        pl.col("samples").filter(scored).max().alias("k"),
        pl.col("samples").filter(scored).min().alias("k_min"),
        pl.col("pass_at_1").mean().alias("pass_at_1"),
        pl.col("maj_at_k").mean().alias("maj_at_k"),
        pl.col("samples").sum().alias("samples"),
        pl.col("answers").list.eval(pl.element().is_null()).list.sum().sum().alias("no_answer"),
        pl.col("finished").list.eval(pl.element().not_()).list.sum().sum().alias("truncated"),
        pl.col("timeouts").sum().alias("timeouts"),
        (CI_Z * pl.col("pass_at_1").std() / pl.col("pass_at_1").count().sqrt()).alias("pass_at_1_ci95"),
        ((reasons == "stop").sum() / reasons.is_not_null().sum()).alias("end_of_turn"),
    )
    answered = (pl.col("samples") - pl.col("no_answer")) / pl.col("samples")
    order = pl.DataFrame({"benchmark": names})
    return (
        order.join(table, on="benchmark", how="left")
        .with_columns(pl.col(pl.UInt32).cast(pl.Int64))
        .with_columns(
            pl.when(pl.col("samples") > 0).then(answered).alias("answered"),
            pl.col("end_of_turn").fill_nan(None),
        )
    )


def summary_table(summary: pl.DataFrame) -> Table:
    """Per-benchmark scores and chain checks for the terminal; benchmarks with unscored problems are
    flagged."""
    table = Table(title="offcurate eval", title_justify="left")
    columns = ("benchmark", "problems", "scored", "no responses", "k", "pass@1", "± 95%", "maj@k")
    for name in (*columns, "end of turn", "answered"):
        table.add_column(name, justify="left" if name == "benchmark" else "right")
    for row in summary.iter_rows(named=True):
        k = "-" if row["k"] is None else str(row["k"])
        if row["k_min"] is not None and row["k_min"] != row["k"]:
            k = f"{row['k_min']}-{row['k']}"
        table.add_row(
            row["benchmark"],
            str(row["problems"]),
            str(row["scored"]),
            str(row["missing"]),
            k,
            _percent(row["pass_at_1"]),
            _percent(row["pass_at_1_ci95"]),
            _percent(row["maj_at_k"]),
            _percent(row["end_of_turn"]),
            _percent(row["answered"]),
            style="yellow" if row["missing"] else None,
        )
    return table


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def evaluate(
    benchmarks: Sequence[Benchmark | Path],
    responses: Path,
    output: Path,
    workers: int | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    overwrite: bool = False,
) -> EvalRun:
    """Score the rollout shards under ``responses`` on ``benchmarks`` and write ``output`` atomically.

    ``benchmarks`` are loaded ``Benchmark``s (what a caller that generated the responses already holds)
    or benchmark file paths (what the CLI passes); either way their names must differ."""
    check_output(output, overwrite, (responses,))
    report = StageReport("eval", output=str(output))
    benchmarks = load_benchmarks(benchmarks)
    names = [b.name for b in benchmarks]
    problems = pl.concat([b.problems.select(pl.lit(b.name).alias("benchmark"), pl.all()) for b in benchmarks])
    answers = read_rollout_answers(responses, "eval: read responses")
    joined, unmatched = match_responses(problems, answers)
    if joined["answer"].null_count() == joined.height:
        raise InputError(
            f"{responses}: no response matches a problem of {', '.join(names)} "
            "(responses are matched by question_id = offcurate.curate.filter.question_id(question))"
        )
    results, killed = score_problems(joined, workers or os.cpu_count() or 1, timeout)
    summary = summarize(results, names)
    with atomic_output(output, overwrite, inputs=(responses,)) as tmp:
        results.write_parquet(tmp / "results.parquet")
        summary.write_parquet(tmp / "summary.parquet")
        meta = {"responses": str(responses), "timeout": timeout, "benchmarks": summary.to_dicts()}
        repeated = {b.name: b.duplicates for b in benchmarks if b.duplicates}
        if repeated:  # questions given twice in a benchmark file, counted once
            meta["repeated_questions"] = repeated
        (tmp / "summary.json").write_text(json.dumps(meta, indent=2) + "\n")
        write_card(
            tmp,
            "Benchmark evaluation (offcurate eval)",
            EVAL_CARD,
            {
                "results": ("results.parquet", results.to_arrow().schema),
                "summary": ("summary.parquet", summary.to_arrow().schema),
            },
        )
    report.counts.update(
        {
            "benchmarks": len(benchmarks),
            "problems": results.height,
            "problems scored": int(summary["scored"].sum()),
            "problems without responses": int(summary["missing"].sum()),
            "responses": answers.height,
            "answers timed out": int(summary["timeouts"].sum()),
        }
    )
    if unmatched:
        report.dropped["responses to no benchmark problem"] = unmatched
    duplicates = sum(b.duplicates for b in benchmarks)
    if duplicates:  # a question given twice (same gold) is one problem: scored once, not weighted twice
        report.dropped["repeated benchmark question (counted once)"] = duplicates
    if killed:
        report.counts["workers killed by the watchdog"] = killed
    report.finish()
    return EvalRun(summary, report)


EVAL_CARD = """
`results.parquet`: one row per benchmark problem: the gold answer, every sample's extracted answer
(`answers`, null when none), whether it finished (`finished`) and is right (`correct`: math-verify's
`verify(gold, answer)`), the vote's `status` and `majority_answer`, `pass_at_1` (mean correctness over the k
samples) and `maj_at_k` (1.0 when the largest class of equivalent answers, ties to the first seen, is the
gold), each sample's `finish_reason` (`stop`: it ended its turn; `length`: cut at the token limit).
Problems without responses have status `no_responses` and null scores. `summary.parquet` /
`summary.json`: per benchmark, problems, scored, missing, k (k_min when it varies), pass@1 and maj@k
averaged over scored problems, `pass_at_1_ci95` (half-width of pass@1's 95% interval over problems),
samples without an answer, truncated samples (thinking never closed), answers that timed out, and the
chain checks: `end_of_turn` (share of samples that ended their turn rather than hit the token limit)
and `answered` (share with an answer the extractor reads).
"""
