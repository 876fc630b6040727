"""Pass 2 of `vote`: label the questions one partition at a time on the verify pool, spill the labels.

    with VerifyPool(LabelQuestion(), workers, timeout) as pool:
        counts = label_partitions(spill, partitions, traces, pool, ShardWriter(path, QUESTION_SCHEMA), folder)

A partition of the question-hash space is read from the answer spill when the pool asks for more work, so
the next partition streams in while the last questions of the current one are still being verified: no
barrier between partitions. When every question of a partition is back, its per-trace labels are spilled
(``labels-<p>.parquet``, one row group per input shard, for pass 3) and its rows of the questions table
written, in partition order (so the table stays sorted by id); then the partition is dropped. Two or three
partitions are resident at a time, whatever the size of the corpus.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pyarrow as pa

from .answers.cluster import NO_ANSWER, OK, TIE
from .answers.equivalence import QuestionResult
from .answers.pool import Task, VerifyPool
from .io.errors import InputError
from .io.report import progress
from .io.shards import ShardWriter
from .io.spill import read_group, write_groups

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
_LABEL_SPILL = {
    "shard": pl.Int32,
    "row": pl.Int64,
    "answer": pl.String,
    "cluster": pl.Int64,
    "reward": pl.Float64,
}
DROPPED = "answers dropped (timeout or >1000 chars)"
READS, FAST_READS = "answers read (parsed)", "answers read by a fast path"


@dataclass
class _Partition:
    """One partition's questions (a row each: id, shards, rows, answers, metadata) and their results."""

    number: int
    groups: pl.DataFrame
    results: list[QuestionResult | None] = field(default_factory=list)
    done: int = 0

    @property
    def complete(self) -> bool:
        return self.done == self.groups.height


def _load(spill: Path, number: int, folder: Path) -> _Partition | None:
    rows = read_group(spill.glob("answers-*.parquet"), "part", number)
    if rows.height == 0:
        return None
    dupes = rows.group_by("question_id", "sample_idx").len().filter(pl.col("len") > 1)
    if dupes.height:
        qid, idx = dupes.row(0)[:2]
        raise InputError(
            f"{folder}: question_id {qid} has sample_idx {idx} more than once "
            f"({dupes.height} duplicated pairs); was the folder filtered twice into one place?"
        )
    groups = (
        rows.sort("question_id", "sample_idx")
        .group_by("question_id", maintain_order=True)
        .agg(
            "shard",
            "row",
            "answer",
            pl.col("question").drop_nulls().first(),
            pl.col("source").first(),
            pl.col("difficulty").first(),
        )
    )
    return _Partition(number, groups, [None] * groups.height)


def _flush(part: _Partition, spill: Path, questions: ShardWriter, counts: Counter) -> None:
    """Spill the per-trace labels of a finished partition and write its rows of the questions table."""
    labels: dict[str, list] = {name: [] for name in _LABEL_SPILL}
    rows: dict[str, list] = {name: [] for name in QUESTION_SCHEMA.names}
    for group, result in zip(part.groups.iter_rows(named=True), part.results):
        label, n = result.label, len(result.answers)
        n_answered = sum(a is not None for a in result.answers)
        ok = label.status == OK
        labels["shard"] += group["shard"]
        labels["row"] += group["row"]
        labels["answer"] += result.answers
        labels["cluster"] += label.clusters
        labels["reward"] += label.rewards
        for name, value in (
            ("question_id", group["question_id"]),
            ("question", group["question"]),
            ("source", group["source"]),
            ("difficulty", group["difficulty"]),
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
            rows[name].append(value)
        counts["trajectories"] += n
        counts["answered"] += n_answered
        counts["questions"] += 1
        counts[f"status {label.status}"] += 1
        counts["all-positive questions"] += ok and label.majority_votes == n
        counts[DROPPED] += result.pathological
    write_groups(
        pl.DataFrame(labels, schema=_LABEL_SPILL), "shard", spill / f"labels-{part.number:05d}.parquet"
    )
    questions.write(pa.Table.from_pydict(rows, QUESTION_SCHEMA))


def label_partitions(
    spill: Path, partitions: int, traces: int, pool: VerifyPool, questions: ShardWriter, folder: Path
) -> Counter:
    """Label every question in the answer spill; returns the counters of the summary (``traces`` only
    sizes the progress bar; ``folder`` names the input in errors)."""
    loaded: dict[int, _Partition] = {}

    def tasks() -> Iterator[Task]:
        for number in range(partitions):
            part = _load(spill, number, folder)
            if part is not None:
                loaded[number] = part
                yield from (
                    ((number, i), answers) for i, answers in enumerate(part.groups["answer"].to_list())
                )

    counts = Counter({f"status {status}": 0 for status in (OK, TIE, NO_ANSWER)})
    with progress() as bar:
        task = bar.add_task("vote: label questions", total=traces)
        for (number, i), result in pool.map(tasks()):
            part = loaded[number]
            part.results[i] = result
            part.done += 1
            bar.advance(task, len(result.answers))
            while loaded and loaded[next(iter(loaded))].complete:  # flush in partition order
                _flush(loaded.pop(next(iter(loaded))), spill, questions, counts)
    counts["math-verify timeouts"] = pool.timeouts
    counts[READS] = pool.reads
    counts[FAST_READS] = pool.fast_reads
    counts["hard timeouts (worker killed)"] = pool.hard_timeouts
    return counts
