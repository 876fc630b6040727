"""``offcurate filter --format F`` for the sets that are not OpenThoughts3: raw shards -> trajectories.

    run_format_filter(Path("data/raw"), Path("data/math"), get_format("openr1-math"))

The same two streaming passes as the OpenThoughts3 filter, over the format's adapter (one raw batch ->
``Traces``): pass 1 computes each kept trace's question id and a digest of its response, so ``sample_idx``
ranks a question's traces by content (the same for any shard order or layout); pass 2 writes them. The
output is the OpenThoughts3 trajectory layout plus ``gold`` (and ``dataset_verdict``) where the set has
them. Drops are counted by reason; a trace is never dropped for its answer, only for missing text.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from ..answers.extract import is_finished
from ..io.card import write_card
from ..io.errors import InputError
from ..io.ids import question_id
from ..io.report import StageReport, progress
from ..io.shards import (
    ShardWriter,
    atomic_output,
    check_output,
    iter_batches,
    list_shards,
    open_shard,
    shard_name,
)
from . import KNOWN
from .canonical import Format, Traces, trajectory_layout


def _traces(path: Path, fmt: Format) -> Iterator[tuple[int, Traces]]:
    """(raw rows read, traces) per batch of one shard."""
    names = set(open_shard(path).schema_arrow.names)
    columns = [*fmt.columns, *(c for c in fmt.optional if c in names)]
    for batch in iter_batches(path, columns=columns):
        yield batch.num_rows, fmt.adapt(batch)


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


def run_format_filter(input_dir: Path, output: Path, fmt: Format, overwrite: bool = False) -> StageReport:
    check_output(output, overwrite, (input_dir,))
    report = StageReport("filter", output=str(output))
    shards = list_shards(input_dir)
    total_rows = 0
    for path in shards:
        shard = open_shard(path)
        fmt.check(path, shard.schema_arrow, KNOWN)
        total_rows += shard.metadata.num_rows
    if total_rows == 0:
        raise InputError(f"{input_dir}: the input shards hold no rows")
    layout = trajectory_layout(fmt.gold, fmt.verdicts)

    members: dict[str, list[tuple[bytes, int, int]]] = defaultdict(list)
    with_gold: set[str] = set()
    dropped, notes = Counter(), Counter()
    with progress() as bar:
        task = bar.add_task("filter: index", total=total_rows)
        for shard_no, path in enumerate(shards):
            n = 0
            for rows, traces in _traces(path, fmt):
                dropped.update(traces.dropped)
                notes.update(traces.notes)
                golds = (
                    traces.table.column("gold").to_pylist() if fmt.gold else [None] * traces.table.num_rows
                )
                for question, response, gold in zip(
                    traces.table.column("question").to_pylist(),
                    traces.table.column("response").to_pylist(),
                    golds,
                ):
                    qid = question_id(question)
                    members[qid].append((_digest(response), shard_no, n))
                    if gold is not None:
                        with_gold.add(qid)
                    n += 1
                bar.advance(task, rows)
    sample_idx = {(s, r): rank for rows in members.values() for rank, (_, s, r) in enumerate(sorted(rows))}

    kept = 0
    with atomic_output(output, overwrite, inputs=(input_dir,)) as tmp, progress() as bar:
        task = bar.add_task("filter: write", total=total_rows)
        written: list[Path] = []
        for shard_no, path in enumerate(shards):
            writer, n = None, 0
            for rows, traces in _traces(path, fmt):
                bar.advance(task, rows)
                table = traces.table
                if table.num_rows == 0:
                    continue
                questions, responses = (
                    table.column("question").to_pylist(),
                    table.column("response").to_pylist(),
                )
                columns = {
                    "question_id": pa.array([question_id(q) for q in questions], pa.string()),
                    "sample_idx": pa.array(
                        [sample_idx[(shard_no, n + i)] for i in range(table.num_rows)], pa.int64()
                    ),
                    **{name: table.column(name) for name in ("question", "response", "source", "difficulty")},
                    "finished": pa.array([is_finished(r) for r in responses], pa.bool_()),
                    **{name: table.column(name) for name in layout.names[7:]},
                }
                n += table.num_rows
                writer = writer or ShardWriter(tmp / f".part-{shard_no:05d}.parquet", layout)
                writer.write(pa.table(columns, schema=layout))
            if writer:
                writer.close()
                kept += writer.rows
                written.append(writer.path)
        if not written:
            raise InputError(f"{input_dir}: no trace of --format {fmt.name} could be used")
        for i, part in enumerate(written):
            part.rename(tmp / shard_name(i, len(written)))
        write_card(
            tmp,
            f"Math trajectories from {fmt.dataset} (offcurate filter)",
            _card(fmt),
            {"default": ("*.parquet", layout)},
        )
    report.counts.update(
        {
            "format": fmt.name,
            "input rows": total_rows,
            "kept trajectories": kept,
            "questions": len(members),
            **({"questions with a gold": len(with_gold)} if fmt.gold else {}),
            "input shards": len(shards),
            **notes,
        }
    )
    report.dropped.update(dropped)
    return report.finish()


def _card(fmt: Format) -> str:
    text = (
        f"One row per teacher trajectory of {fmt.dataset} (`--format {fmt.name}`). `question_id` = first "
        "16 hex of sha256 of the whitespace-collapsed question; `sample_idx` ranks a question's traces by "
        "response content; `finished` is false for a trace cut inside `<think>`."
    )
    if fmt.gold:
        text += " `gold` is the dataset's reference answer (null where it has none)."
    if fmt.verdicts:
        text += " `dataset_verdict` is the dataset's own per-trace correctness (`correctness_math_verify`)."
    return text
