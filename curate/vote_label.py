"""Pass 2 of `vote`: label the questions one partition at a time on the verify pool, spill the labels.

    with VerifyPool(LabelQuestion(), workers, timeout) as pool:
        counts = label_partitions(spill, partitions, traces, pool, ShardWriter(path, QUESTION_SCHEMA), folder)

A partition of the question-hash space is read from the answer spill when the pool asks for more work, so
the next partition streams in while the last questions of the current one are still being verified: no
barrier between partitions. When every question of a partition is back, its per-trace labels are spilled
(``labels-<p>.parquet``, one row group per input shard, for pass 3) and its rows of the questions table
written, in partition order (so the table stays sorted by id); then the partition is dropped. Two or three
partitions are resident at a time, whatever the size of the corpus.

With a gold (``gold=True``: the task's first answer is the question's gold, the job ``LabelWithGold``),
each trace also gets ``gold_reward`` and each question the ``GOLD_FIELDS`` below, and the counters hold
what the summary needs for the pseudo-label accuracy.
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
from .answers.scoring import GOLD_OK, GoldResult
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
GOLD_FIELDS = [
    ("gold", pa.string()),  # the dataset's reference answer (null: none, or samples disagreeing on it)
    ("gold_status", pa.string()),  # ok, missing, unreadable (math-verify reads no math), conflicting
    ("gold_votes", pa.int64()),  # traces whose answer verify(gold, answer) accepts
    ("gold_pass_rate", pa.float64()),  # gold_votes / n_samples: the teacher's true pass rate
    ("gold_agrees", pa.bool_()),  # the majority answer is right (status ok and a readable gold only)
    ("rewards_agreeing_gold", pa.int64()),  # traces whose vote reward equals their gold reward
]
GOLD_QUESTION_SCHEMA = pa.schema([*QUESTION_SCHEMA, *GOLD_FIELDS])
CONFLICTING = "conflicting"
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


def _gold_columns(rows: pl.DataFrame) -> list[pl.Expr]:
    if "gold" not in rows.columns:
        return []
    return [pl.col("gold").drop_nulls().unique().sort().alias("golds")]


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
            *_gold_columns(rows),
        )
    )
    return _Partition(number, groups, [None] * groups.height)


def _gold_row(group: dict, result: QuestionResult) -> dict:
    """The question's gold columns (``GOLD_FIELDS``); ``curate/gold.py`` sums them up."""
    golds = group["golds"]
    status = CONFLICTING if len(golds) > 1 else getattr(result, "gold_status", GOLD_OK)
    row = {"gold": golds[0] if len(golds) == 1 else None, "gold_status": status}
    row.update(gold_votes=None, gold_pass_rate=None, gold_agrees=None, rewards_agreeing_gold=None)
    if not isinstance(result, GoldResult) or result.gold_rewards is None:
        return row
    n, rewards, gold_rewards = len(result.answers), result.label.rewards, result.gold_rewards
    row["gold_votes"] = int(sum(gold_rewards))
    row["gold_pass_rate"] = row["gold_votes"] / n if n else None
    if result.gold_agrees is not None:  # status ok: every trace has a vote reward
        agreeing = sum(r == g for r, g in zip(rewards, gold_rewards))
        row.update(gold_agrees=result.gold_agrees, rewards_agreeing_gold=agreeing)
    return row


def _flush(part: _Partition, spill: Path, questions: ShardWriter, counts: Counter) -> None:
    """Spill the per-trace labels of a finished partition and write its rows of the questions table."""
    gold = "golds" in part.groups.columns
    spill_schema = {**_LABEL_SPILL, **({"gold_reward": pl.Float64} if gold else {})}
    labels: dict[str, list] = {name: [] for name in spill_schema}
    rows: dict[str, list] = {name: [] for name in questions.schema.names}
    for group, result in zip(part.groups.iter_rows(named=True), part.results):
        label, n = result.label, len(result.answers)
        n_answered = sum(a is not None for a in result.answers)
        ok = label.status == OK
        labels["shard"] += group["shard"]
        labels["row"] += group["row"]
        labels["answer"] += result.answers
        labels["cluster"] += label.clusters
        labels["reward"] += label.rewards
        if gold:
            gold_rewards = getattr(result, "gold_rewards", None)
            labels["gold_reward"] += gold_rewards if gold_rewards is not None else [None] * n
            for name, value in _gold_row(group, result).items():
                rows[name].append(value)
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
        pl.DataFrame(labels, schema=spill_schema), "shard", spill / f"labels-{part.number:05d}.parquet"
    )
    questions.write(pa.Table.from_pydict(rows, questions.schema))


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
                answers = part.groups["answer"].to_list()
                if "golds" in part.groups.columns:  # the task's first answer is the gold (None: none)
                    golds = [g[0] if len(g) == 1 else None for g in part.groups["golds"].to_list()]
                    answers = [[gold, *a] for gold, a in zip(golds, answers)]
                yield from (((number, i), a) for i, a in enumerate(answers))

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
