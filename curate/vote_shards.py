"""The two passes of `vote` that stream the input shards, one shard per task in a process pool.

    n = extract_shard(Path("math/train-00003-of-00213.parquet"), 3, Slicing(8), spill)     # pass 1
    rows = write_shard(Path("math/train-00003-of-00213.parquet"), 3, Slicing(8), spill, out)  # pass 3

Pass 1 reads a shard, extracts each trace's answer from its tail (``extract.extract_batch``) and spills the
small rows (question id, sample index, answer, shard, row, the question's metadata) by partition; the text
never leaves the task. Pass 3 writes the shard again with its labels attached by row position: the labels
of one shard are read from the label spill (one row group per file), no join on string keys; the shard's
column chunks are copied as they are (``vote_splice``), or, where its layout does not allow that or only a
slice of its rows is kept, its rows are read and encoded again.

A ``Layout`` says which optional columns the filter output carries: ``gold`` (a set with reference
answers: every trace also gets ``gold_reward``) and ``dataset_verdict`` (the set's own verdicts, passed
through as they are).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from .answers.extract import extract_batch
from .formats.canonical import trajectory_layout
from .io.shards import ShardWriter, iter_batches, reject_nulls
from .io.spill import partition_of, question_hash, read_group, write_groups
from .vote_splice import splice_shard

LABEL_FIELDS = [("answer", pa.string()), ("cluster", pa.int64()), ("reward", pa.float64())]
GOLD_REWARD = ("gold_reward", pa.float64())  # verify(gold, answer): 1.0 / 0.0; null without a usable gold
_EXTRACT_COLUMNS = ["question_id", "sample_idx", "question", "source", "difficulty", "response"]


@dataclass(frozen=True)
class Layout:
    """The filter output's optional columns: ``gold`` and the set's ``dataset_verdict``."""

    gold: bool = False
    verdicts: bool = False

    @property
    def input(self) -> pa.Schema:
        return trajectory_layout(self.gold, self.verdicts)

    @property
    def labels(self) -> list[tuple[str, pa.DataType]]:
        return LABEL_FIELDS + [GOLD_REWARD] * self.gold

    @property
    def output(self) -> pa.Schema:
        return pa.schema([*self.input, *self.labels])


TRAJECTORY_SCHEMA = Layout().output


@dataclass(frozen=True)
class Slicing:
    """Where rows go: ``partitions`` of the hash space for the label pass, and which ``--shard-index``
    of ``--num-shards`` this run keeps."""

    partitions: int
    shard_index: int = 0
    num_shards: int = 1

    def keep(self, hashes: pl.Series) -> pl.Series | None:
        """Mask of the rows in this run's slice of the question-hash space (``None``: all of them)."""
        return None if self.num_shards == 1 else hashes % self.num_shards == self.shard_index


def _hashes(batch: pa.RecordBatch) -> pl.Series:
    ids = pl.from_arrow(batch.column("question_id")).to_frame("id")
    return ids.select(question_hash(pl.col("id")).alias("hash")).to_series()


def extract_shard(path: Path, shard_no: int, slicing: Slicing, spill: Path, layout: Layout = Layout()) -> int:
    """Pass 1 for one shard: spill ``answers-<shard>.parquet``; returns the rows in the slice. The question
    text is kept on each question's first sample in this shard only (not 16 times); the gold on every
    sample (a question whose samples disagree on it has none)."""
    parts, offset = [], 0
    for batch in iter_batches(path, columns=_EXTRACT_COLUMNS + ["gold"] * layout.gold):
        reject_nulls(path, batch, ["question_id", "response"], offset)  # a null response has no answer
        hashes = _hashes(batch)
        meta = pl.from_arrow(batch.drop_columns(["response"])).with_columns(
            pl.int_range(offset, offset + batch.num_rows, dtype=pl.Int64).alias("row"), hashes
        )
        offset += batch.num_rows
        responses = batch.column("response")
        keep = slicing.keep(hashes)
        if keep is not None:
            meta = meta.filter(keep)
            responses = responses.filter(keep.to_arrow())
        if meta.height:
            answers, _ = extract_batch(responses)
            parts.append(meta.with_columns(pl.Series("answer", answers, dtype=pl.String)))
    if not parts:
        return 0
    frame = pl.concat(parts).with_columns(
        pl.col("sample_idx").cast(pl.Int64),
        pl.col("difficulty").cast(pl.Int64),
        pl.lit(shard_no, pl.Int32).alias("shard"),
        partition_of(pl.col("hash"), slicing.partitions).alias("part"),
    )
    first = pl.col("sample_idx") == pl.col("sample_idx").min().over("question_id")
    frame = frame.with_columns(pl.when(first).then(pl.col("question")).alias("question")).drop("hash")
    write_groups(frame, "part", spill / f"answers-{shard_no:05d}.parquet")
    return frame.height


def part_file(folder: Path, shard_no: int) -> Path:
    """Where pass 3 writes shard ``shard_no`` (renamed to its Hub name once all are written)."""
    return folder / f".part-{shard_no:05d}.parquet"


def write_shard(
    path: Path, shard_no: int, slicing: Slicing, spill: Path, folder: Path, layout: Layout = Layout()
) -> tuple[int, bool]:
    """Pass 3 for one shard: stream it and write it with ``answer``, ``cluster``, ``reward`` (and
    ``gold_reward``) to ``part_file(folder, shard_no)``; the k-th row of the slice gets the k-th label of
    the shard (labels sorted by row). Returns the rows written and whether the text was copied (not
    re-encoded)."""
    labels = read_group(spill.glob("labels-*.parquet"), "shard", shard_no).sort("row")
    fields = layout.labels
    columns = [labels.get_column(name).to_arrow() for name, _ in fields] if labels.height else []
    if slicing.num_shards == 1 and labels.height:  # every row kept: copy the text, do not re-encode it
        table = pa.Table.from_arrays(columns, names=[name for name, _ in fields]).cast(pa.schema(fields))
        if splice_shard(path, table, part_file(folder, shard_no), layout.input):
            return labels.height, True
    writer, taken = None, 0
    for batch in iter_batches(path, columns=layout.input.names):
        keep = slicing.keep(_hashes(batch))
        if keep is not None:
            batch = batch.filter(keep.to_arrow())
        if batch.num_rows == 0:
            continue
        if taken + batch.num_rows > labels.height:
            raise RuntimeError(f"{path}: the label spill holds {labels.height} rows, the shard more")
        attached = [column.slice(taken, batch.num_rows) for column in columns]
        table = pa.Table.from_batches([batch]).select(layout.input.names)
        for (name, _), column in zip(fields, attached):
            table = table.append_column(name, column)
        writer = writer or ShardWriter(part_file(folder, shard_no), layout.output)
        writer.write(table)
        taken += batch.num_rows
    if writer is None:
        return 0, False
    writer.close()
    if taken != labels.height:
        raise RuntimeError(f"{path}: {labels.height} labels spilled, {taken} rows written")
    return writer.rows, False
