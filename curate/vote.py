"""``offcurate vote``: extract final answers, cluster equivalent ones per question, score every trace.

    offcurate vote -i data/math -o data/voted [--workers 2] [--timeout 2] [--shard-index 0 --num-shards 8]

Three passes, memory bounded by the small per-trace label table, never by the text:
1. stream the ``response`` column and extract answers from each trace's tail (``extract.extract_batch``);
2. label each question in a process pool (math-verify, bounded per step, watchdog per question);
3. stream the shards again and write them with ``answer``, ``cluster``, ``reward`` joined on.
Writes ``trajectories/*.parquet`` and ``questions/*.parquet`` (see the card in the output folder).
"""

from __future__ import annotations

import multiprocessing as mp
import os
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path

import polars as pl
import pyarrow as pa

from .card import write_card
from .cluster import OK
from .equivalence import LabelQuestion
from .errors import InputError
from .extract import extract_batch
from .filter import OUTPUT_SCHEMA as FILTER_SCHEMA
from .pool import VerifyPool
from .report import StageReport, progress
from .shards import (
    ShardWriter,
    atomic_output,
    check_columns,
    is_bool,
    is_integer,
    is_string,
    iter_batches,
    list_shards,
    open_shard,
    shard_name,
    write_table,
)

REQUIRED = {
    "question_id": ("string", is_string),
    "sample_idx": ("int64", is_integer),
    "question": ("string", is_string),
    "response": ("string", is_string),
    "source": ("string", is_string),
    "difficulty": ("int64 (nullable)", is_integer),
    "finished": ("bool", is_bool),
}
LABEL_FIELDS = [("answer", pa.string()), ("cluster", pa.int64()), ("reward", pa.float64())]
TRAJECTORY_SCHEMA = pa.schema(list(FILTER_SCHEMA) + LABEL_FIELDS)
TRACE_LABEL_SCHEMA = pa.schema([("question_id", pa.string()), ("sample_idx", pa.int64()), *LABEL_FIELDS])
QUESTION_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("question", pa.string()),
        ("source", pa.string()),
        ("difficulty", pa.int64()),
        ("n_samples", pa.int64()),
        ("n_answered", pa.int64()),
        ("n_clusters", pa.int64()),
        ("majority_answer", pa.string()),
        ("majority_votes", pa.int64()),
        ("vote_share", pa.float64()),
        ("status", pa.string()),
        ("pass_rate", pa.float64()),
        ("all_positive", pa.bool_()),
    ]
)


def in_slice(question_ids: pl.Series, shard_index: int, num_shards: int) -> pl.Series:
    """Which questions belong to slice ``shard_index`` of the question-hash space (ids are sha256 hex)."""
    if num_shards == 1:
        return pl.Series([True] * len(question_ids))
    return question_ids.str.slice(0, 8).str.to_integer(base=16) % num_shards == shard_index


def _extract_shard(path: Path, shard_no: int, shard_index: int, num_shards: int) -> pl.DataFrame:
    """(question_id, sample_idx, answer, shard) for every trace of one shard in the slice, plus the
    question's metadata on its sample 0 only (the text of a question is kept once, not 16 times)."""
    parts = []
    columns = ["question_id", "sample_idx", "question", "source", "difficulty", "response"]
    for batch in iter_batches(path, columns=columns):
        keep = in_slice(pl.from_arrow(batch.column("question_id")), shard_index, num_shards)
        batch = batch.filter(pa.array(keep.to_list(), pa.bool_()))
        answers, _ = extract_batch(batch.column("response"))
        meta = pl.from_arrow(batch.drop_columns(["response"]))
        parts.append(meta.with_columns(pl.Series("answer", answers, dtype=pl.String)))
    if not parts:
        return pl.DataFrame()
    frame = pl.concat(parts).with_columns(
        pl.col("sample_idx").cast(pl.Int64),
        pl.col("difficulty").cast(pl.Int64),
        pl.lit(shard_no, pl.Int32).alias("shard"),
    )
    return frame.with_columns(pl.when(pl.col("sample_idx") == 0).then(pl.col("question")).alias("question"))


def _extract_pass(
    shards: list[Path], shard_index: int, num_shards: int, rows: list[int], executor: Executor
) -> pl.DataFrame:
    """Pass 1 over all shards in parallel (one shard per task)."""
    futures = {
        executor.submit(_extract_shard, path, n, shard_index, num_shards): n for n, path in enumerate(shards)
    }
    parts = []
    with progress() as bar:
        task = bar.add_task("vote: extract answers", total=sum(rows))
        for future in as_completed(futures):
            parts.append(future.result())
            bar.advance(task, rows[futures[future]])
    parts = [p for p in parts if p.height]
    return pl.concat(parts).sort("shard") if parts else pl.DataFrame()


def _check_unique(traces: pl.DataFrame, folder: Path) -> None:
    dupes = traces.group_by("question_id", "sample_idx").len().filter(pl.col("len") > 1)
    if dupes.height:
        qid, idx = dupes.row(0)[:2]
        raise InputError(
            f"{folder}: question_id {qid} has sample_idx {idx} more than once "
            f"({dupes.height} duplicated pairs); was the folder filtered twice into one place?"
        )


def label_traces(traces: pl.DataFrame, pool: VerifyPool) -> tuple[pl.DataFrame, pl.DataFrame, dict[str, int]]:
    """Label every question of ``traces`` on ``pool``: per-trace labels and the per-question table."""
    grouped = (
        traces.sort("question_id", "sample_idx")
        .group_by("question_id", maintain_order=True)
        .agg(
            pl.col("sample_idx"),
            pl.col("answer"),
            pl.col("question").drop_nulls().first(),
            pl.col("source").first(),
            pl.col("difficulty").first(),
        )
    )
    tasks = ((i, answers) for i, answers in enumerate(grouped.get_column("answer").to_list()))
    results = [None] * grouped.height
    with progress() as bar:
        task = bar.add_task("vote: label questions", total=grouped.height)
        for index, result in pool.map(tasks):
            results[index] = result
            bar.advance(task)
    counters = {"hard timeouts (worker killed)": pool.hard_timeouts}

    per_trace = {"question_id": [], "sample_idx": [], "answer": [], "cluster": [], "reward": []}
    per_question = {name: [] for name in QUESTION_SCHEMA.names}
    dropped_answers = 0
    for row, result in zip(grouped.iter_rows(named=True), results):
        label, n = result.label, len(result.answers)
        dropped_answers += result.pathological
        per_trace["question_id"] += [row["question_id"]] * n
        per_trace["sample_idx"] += row["sample_idx"]
        per_trace["answer"] += result.answers
        per_trace["cluster"] += label.clusters
        per_trace["reward"] += label.rewards
        n_answered = sum(a is not None for a in result.answers)
        ok = label.status == OK
        for name, value in (
            ("question_id", row["question_id"]),
            ("question", row["question"]),
            ("source", row["source"]),
            ("difficulty", row["difficulty"]),
            ("n_samples", n),
            ("n_answered", n_answered),
            ("n_clusters", label.n_clusters),
            ("majority_answer", label.majority_answer),
            ("majority_votes", label.majority_votes),
            ("vote_share", label.majority_votes / n_answered if n_answered else None),
            ("status", label.status),
            ("pass_rate", label.majority_votes / n if ok else None),
            ("all_positive", ok and label.majority_votes == n),
        ):
            per_question[name].append(value)
    counters["answers dropped (timeout or >1000 chars)"] = dropped_answers
    trace_labels = pl.from_arrow(pa.Table.from_pydict(per_trace, TRACE_LABEL_SCHEMA))
    questions = pl.from_arrow(pa.Table.from_pydict(per_question, QUESTION_SCHEMA))
    return trace_labels, questions, counters


def run_vote(
    input_dir: Path,
    output: Path,
    workers: int | None = None,
    timeout: float | None = 2.0,
    shard_index: int = 0,
    num_shards: int = 1,
    overwrite: bool = False,
) -> StageReport:
    if not 0 <= shard_index < num_shards:
        raise InputError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    workers = workers or os.cpu_count() or 1
    report = StageReport("vote", output=str(output))
    shards = list_shards(input_dir)
    rows = []
    for path in shards:
        shard = open_shard(path)
        check_columns(path, shard.schema_arrow, REQUIRED)
        rows.append(shard.metadata.num_rows)
    if sum(rows) == 0:
        raise InputError(f"{input_dir}: the input shards hold no rows")

    spawn = mp.get_context("spawn")  # fork after polars/arrow threads start is unsafe
    with (
        ProcessPoolExecutor(min(workers, len(shards)), mp_context=spawn) as executor,
        VerifyPool(LabelQuestion(), workers, timeout, start=False) as pool,
    ):
        pool.start()  # workers import math-verify while pass 1 runs
        traces = _extract_pass(shards, shard_index, num_shards, rows, executor)
        if traces.height == 0:
            raise InputError(f"{input_dir}: no trajectories in slice {shard_index} of {num_shards}")
        _check_unique(traces, input_dir)
        trace_labels, questions, counters = label_traces(traces, pool)
        trace_labels = trace_labels.join(
            traces.select("question_id", "sample_idx", "shard"), on=["question_id", "sample_idx"]
        )
        with atomic_output(output, overwrite) as tmp:
            (tmp / "trajectories").mkdir()
            (tmp / "questions").mkdir()
            written = _write_trajectories(
                shards, trace_labels, tmp / "trajectories", shard_index, num_shards, rows, executor
            )
            write_table(
                questions.sort("question_id").to_arrow().cast(QUESTION_SCHEMA),
                tmp / "questions" / shard_name(0, 1),
            )
            write_card(
                tmp,
                "Majority-vote labeled trajectories (offcurate vote)",
                VOTE_CARD,
                {
                    "trajectories": ("trajectories/*.parquet", TRAJECTORY_SCHEMA),
                    "questions": ("questions/*.parquet", QUESTION_SCHEMA),
                },
            )

    status = questions.get_column("status").value_counts()
    by_status = dict(zip(status.get_column("status").to_list(), status.get_column("count").to_list()))
    report.counts.update(
        {
            "trajectories": traces.height,
            "answered": int(trace_labels.get_column("answer").is_not_null().sum()),
            "questions": questions.height,
            **{f"status {s}": by_status.get(s, 0) for s in ("ok", "tie", "no_answer")},
            "all-positive questions": int(questions.get_column("all_positive").sum()),
            **counters,
            "output shards": written,
        }
    )
    if num_shards > 1:
        report.counts["slice"] = f"{shard_index} of {num_shards}"
    return report.finish()


def _write_shard(path: Path, labels: pl.DataFrame, out: Path, shard_index: int, num_shards: int) -> int:
    """Stream one input shard and write it with its labels joined on; returns the rows written."""
    writer = None
    for batch in iter_batches(path, columns=FILTER_SCHEMA.names):
        frame = pl.from_arrow(batch).with_columns(
            pl.col("sample_idx").cast(pl.Int64), pl.col("difficulty").cast(pl.Int64)
        )
        frame = frame.filter(in_slice(frame.get_column("question_id"), shard_index, num_shards))
        if frame.height == 0:
            continue
        joined = frame.join(labels, on=["question_id", "sample_idx"], how="left", maintain_order="left")
        writer = writer or ShardWriter(out, TRAJECTORY_SCHEMA)
        writer.write(joined.to_arrow())
    if writer is None:
        return 0
    writer.close()
    return writer.rows


def _write_trajectories(
    shards: list[Path],
    labels: pl.DataFrame,
    folder: Path,
    shard_index: int,
    num_shards: int,
    rows: list[int],
    executor: Executor,
) -> int:
    """Pass 3, one shard per task: each task gets only the labels of its own shard."""
    by_shard = {
        key[0]: part.drop("shard") for key, part in labels.partition_by("shard", as_dict=True).items()
    }
    futures = {}
    for n, path in enumerate(shards):
        if n in by_shard:
            part = folder / f".part-{n:05d}.parquet"
            futures[executor.submit(_write_shard, path, by_shard[n], part, shard_index, num_shards)] = n
    written = []
    with progress() as bar:
        task = bar.add_task("vote: write trajectories", total=sum(rows))
        for future in as_completed(futures):
            if future.result():
                written.append(folder / f".part-{futures[future]:05d}.parquet")
            bar.advance(task, rows[futures[future]])
    for i, part in enumerate(sorted(written)):
        part.rename(folder / shard_name(i, len(written)))
    return len(written)


VOTE_CARD = """
Two configs. `trajectories`: every filtered trajectory plus `answer` (the final answer as written, null when
the trace is unfinished, has no answer, or its answer timed out in math-verify), `cluster` (0 = the majority
class of mathematically equivalent answers, null without answer) and `reward` (1.0 in the majority class,
0.0 otherwise; null when the question's status is not `ok`). `questions`: one row per question with
`status` (`ok`, `tie` when the two largest classes are equally large, `no_answer`), `majority_answer` (the
most written form in the majority class), `vote_share` = majority votes / answered traces, `pass_rate` =
majority votes / all traces, and `all_positive` (status ok and every trace rewarded 1).
"""
