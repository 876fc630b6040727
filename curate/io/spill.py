"""Hash-partitioned spill files: how `vote` meets a question's rows without holding the corpus in memory.

    part = partition_of(question_hash(pl.col("question_id")), partitions)   # an expression, per row
    write_groups(frame, "part", spill / "answers-00007.parquet")            # one row group per partition
    rows = read_group(spill.glob("answers-*.parquet"), "part", 3)           # partition 3, from every file

The 16 rows of a question are scattered over many input shards, and the label pass needs them together.
Holding a table of every trace grows with the corpus; instead each input shard's (small, text-free) rows
are spilled with one row group per partition of the question-hash space, and a reader asks for one
partition: Parquet row-group statistics let it skip every other group. The number of partitions grows
with the number of rows, so one partition (what is resident at a time) stays the same size whatever N is.
Labels go back the same way, grouped by input shard, so the writing pass reads just its own shard's.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

ROWS_PER_PARTITION = 64_000  # ~4000 questions: a few MB of answers, labels and results resident at once
_HASH_SPACE = 2**32


def question_hash(ids: pl.Expr) -> pl.Expr:
    """A 32-bit value per question id: its first 8 hex digits (ids are sha256 hex, see
    ``filter.question_id``, so this is uniform and keeps partitions in id order); a hash for other ids."""
    prefix = ids.str.slice(0, 8).str.to_integer(base=16, strict=False).cast(pl.Int64)
    return prefix.fill_null((ids.hash(seed=0) % _HASH_SPACE).cast(pl.Int64))


def partition_of(hashes: pl.Expr, partitions: int) -> pl.Expr:
    """Range partition of the hash space: partition ``p`` holds ids in the p-th of ``partitions`` ranges."""
    return (hashes * partitions // _HASH_SPACE).cast(pl.Int32)


def partitions_for(rows: int, rows_per_partition: int = ROWS_PER_PARTITION) -> int:
    """How many partitions keep each one near ``rows_per_partition`` rows."""
    return max(1, -(-rows // rows_per_partition))


def write_groups(frame: pl.DataFrame, by: str, path: Path) -> None:
    """Write ``frame`` sorted by the integer column ``by``, one row group per value, so ``read_group``
    touches only the group it asks for."""
    frame = frame.sort(by, maintain_order=True)
    table = frame.to_arrow()
    bounds = frame.get_column(by).rle().struct.field("len").cum_sum().to_list()
    with pq.ParquetWriter(path, table.schema, compression="zstd") as writer:
        start = 0
        for end in bounds:
            writer.write_table(table.slice(start, end - start), row_group_size=end - start)
            start = end


def read_group(paths: Iterable[Path], by: str, value: int) -> pl.DataFrame:
    """Rows with ``by == value`` from the spill files ``paths`` (empty frame when there are none)."""
    paths = sorted(paths)
    if not paths:
        return pl.DataFrame()
    return pl.scan_parquet(paths).filter(pl.col(by) == value).collect()
