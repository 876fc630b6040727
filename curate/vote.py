"""``offcurate vote``: extract final answers, cluster equivalent ones per question, score every trace.

    offcurate vote -i data/math -o data/voted [--workers 2] [--timeout 2] [--shard-index 0 --num-shards 8]

Three passes; what is resident is one shard's small rows or one partition of questions, never the text
and never a table of the whole corpus (``spill.py``):
1. stream each shard's ``response`` column, extract answers from each trace's tail, spill the small rows by
   partition of the question-hash space (``vote_shards.extract_shard``);
2. label one partition at a time in a process pool (math-verify, bounded per step, watchdog per
   question), spill the labels by input shard (``vote_label.label_partitions``);
3. stream the shards again and write them with ``answer``, ``cluster``, ``reward`` attached
   (``vote_shards.write_shard``).
Writes ``trajectories/*.parquet`` and ``questions/*.parquet`` (see the card in the output folder); the spill
lives in the temporary output folder and is removed before it is renamed into place.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path

import pyarrow as pa

from .answers.equivalence import LabelQuestion
from .answers.pool import VerifyPool, die_with_parent
from .io.card import write_vote_layout_card
from .io.errors import InputError
from .io.report import StageReport, progress
from .io.shards import (
    ShardWriter,
    atomic_output,
    check_columns,
    check_output,
    is_bool,
    is_integer,
    is_string,
    list_shards,
    open_shard,
    shard_name,
)
from .io.spill import ROWS_PER_PARTITION, partitions_for
from .vote_label import DROPPED, FAST_READS, QUESTION_SCHEMA, READS, label_partitions
from .vote_shards import LABEL_FIELDS, TRAJECTORY_SCHEMA, Slicing, extract_shard, part_file, write_shard

__all__ = ["QUESTION_SCHEMA", "TRACE_LABEL_SCHEMA", "TRAJECTORY_SCHEMA", "run_vote"]

REQUIRED = {
    "question_id": ("string", is_string),
    "sample_idx": ("int64", is_integer),
    "question": ("string", is_string),
    "response": ("string", is_string),
    "source": ("string", is_string),
    "difficulty": ("int64 (nullable)", is_integer),
    "finished": ("bool", is_bool),
}
TRACE_LABEL_SCHEMA = pa.schema([("question_id", pa.string()), ("sample_idx", pa.int64()), *LABEL_FIELDS])


def _per_shard(
    what: str, fn, shards: dict[int, Path], rows: list[int], executor: Executor, *args
) -> dict[int, int]:
    """Run ``fn(path, shard_no, *args)`` for every shard in parallel; returns its result per shard."""
    futures = {executor.submit(fn, path, n, *args): n for n, path in shards.items()}
    done = {}
    with progress() as bar:
        task = bar.add_task(what, total=sum(rows[n] for n in shards))
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            bar.advance(task, rows[futures[future]])
    return done


def run_vote(
    input_dir: Path,
    output: Path,
    workers: int | None = None,
    timeout: float | None = 2.0,
    shard_index: int = 0,
    num_shards: int = 1,
    overwrite: bool = False,
    rows_per_partition: int = ROWS_PER_PARTITION,
) -> StageReport:
    """Label every question of ``input_dir`` (or of one slice of it) into ``output``; see the module doc.
    ``rows_per_partition`` sizes the spill partitions (tests shrink it to exercise many)."""
    if not 0 <= shard_index < num_shards:
        raise InputError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    check_output(output, overwrite, (input_dir,))
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
    slicing = Slicing(partitions_for(sum(rows) // num_shards, rows_per_partition), shard_index, num_shards)

    spawn = mp.get_context("spawn")  # fork after polars/arrow threads start is unsafe
    with (
        atomic_output(output, overwrite, inputs=(input_dir,)) as tmp,
        ProcessPoolExecutor(
            min(workers, len(shards)), mp_context=spawn, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as executor,
        VerifyPool(LabelQuestion(), workers, timeout, start=False) as pool,
    ):
        pool.start()  # workers import math-verify while pass 1 runs
        spill = tmp / "spill"
        spill.mkdir()
        for folder in ("trajectories", "questions"):
            (tmp / folder).mkdir()
        every = dict(enumerate(shards))
        kept = _per_shard("vote: extract answers", extract_shard, every, rows, executor, slicing, spill)
        if sum(kept.values()) == 0:
            raise InputError(f"{input_dir}: no trajectories in slice {shard_index} of {num_shards}")
        questions = ShardWriter(tmp / "questions" / shard_name(0, 1), QUESTION_SCHEMA)
        counts = label_partitions(spill, slicing.partitions, sum(kept.values()), pool, questions, input_dir)
        questions.close()
        out = tmp / "trajectories"
        in_slice = {n: path for n, path in every.items() if kept[n]}
        written = _per_shard(
            "vote: write trajectories", write_shard, in_slice, rows, executor, slicing, spill, out
        )
        shutil.rmtree(spill)
        parts = [part_file(out, n) for n in sorted(written) if written[n]]
        for i, part in enumerate(parts):
            part.rename(out / shard_name(i, len(parts)))
        title = "Majority-vote labeled trajectories (offcurate vote)"
        write_vote_layout_card(tmp, title, VOTE_CARD, TRAJECTORY_SCHEMA, QUESTION_SCHEMA)

    report.counts.update(
        {
            **{name: counts[name] for name in ("trajectories", "answered", "questions")},
            **{f"status {s}": counts[f"status {s}"] for s in ("ok", "tie", "no_answer")},
            "all-positive questions": counts["all-positive questions"],
            "math-verify timeouts": counts["math-verify timeouts"],
            "hard timeouts (worker killed)": counts["hard timeouts (worker killed)"],
            DROPPED: counts[DROPPED],
            READS: counts[READS],
            FAST_READS: counts[FAST_READS],
            "output shards": len(parts),
            "spill partitions": slicing.partitions,
        }
    )
    if num_shards > 1:
        report.counts["slice"] = f"{shard_index} of {num_shards}"
    return report.finish()


VOTE_CARD = """
Two configs. `trajectories`: every filtered trajectory plus `answer` (the final answer as written, null when
the trace is unfinished, has no answer, or its answer timed out in math-verify), `cluster` (0 = the majority
class of mathematically equivalent answers, null without answer) and `reward` (1.0 in the majority class,
0.0 otherwise; null when the question's status is not `ok`). `questions`: one row per question with
`status` (`ok`, `tie` when the two largest classes are equally large, `no_answer`), `majority_answer` (the
most written form in the majority class), `vote_share` = majority votes / answered traces, `pass_rate` =
majority votes / all traces, and `all_positive` (status ok and every trace rewarded 1).
"""
