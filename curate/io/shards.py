"""Parquet shard I/O shared by every stage: listing, schema checks, Hub-style names, atomic output folders.

Stages stream ``*.parquet`` folders batch by batch (the full dataset is ~28 GB compressed), write their
result into a temporary sibling folder and rename it into place only on success, so an interrupted run
never leaves a folder that looks complete.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import InputError
from .output import atomic_output as atomic_output  # re-exported: every stage takes it from here
from .output import check_output as check_output

ROW_GROUP_ROWS = 512  # ~25 MB of 50 KB traces per row group: good for scans, small enough to stream
COMPRESSION = "zstd"
LONG_TEXT = {"response"}  # unique ~50 KB strings: dictionary pages and min/max statistics only cost time

TypeCheck = Callable[[pa.DataType], bool]


def shard_name(index: int, count: int, split: str = "train") -> str:
    """Hub naming, so ``datasets`` and the Hub viewer pick the split up by themselves."""
    return f"{split}-{index:05d}-of-{count:05d}.parquet"


def list_shards(folder: Path | str) -> list[Path]:
    """Sorted ``*.parquet`` files of a folder (recursively), or a clear error when there are none."""
    folder = Path(folder)
    if not folder.exists():
        raise InputError(f"{folder}: no such file or folder")
    if folder.is_file():
        return [folder]
    shards = sorted(p for p in folder.rglob("*.parquet") if not p.name.startswith("."))
    if not shards:
        raise InputError(f"{folder}: no *.parquet files in this folder")
    return shards


def open_shard(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: not a readable Parquet file ({_first_line(err)})") from None


def check_columns(path: Path, schema: pa.Schema, required: dict[str, tuple[str, TypeCheck]]) -> None:
    """Fail on the first missing column or wrong type, naming file, column, expected and found type."""
    for column, (expected, is_ok) in required.items():
        index = schema.get_field_index(column)
        if index < 0:
            found = ", ".join(schema.names) or "none"
            raise InputError(f"{path}: missing column '{column}' (columns found: {found})")
        found_type = schema.field(index).type
        if not is_ok(found_type):
            raise InputError(f"{path}: column '{column}' has type {found_type}, expected {expected}")


def is_string(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)


def is_integer(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_null(t)


def is_float(t: pa.DataType) -> bool:
    return pa.types.is_floating(t) or pa.types.is_null(t)


def is_bool(t: pa.DataType) -> bool:
    return pa.types.is_boolean(t)


def iter_batches(
    path: Path, columns: list[str] | None = None, batch_size: int = 256, threads: bool = True
) -> Iterator[pa.RecordBatch]:
    """Stream a shard; a corrupt page or invalid UTF-8 surfaces as an InputError naming the file (and row).
    ``threads=False`` where shards are read in parallel already: pyarrow's decoding threads then cost
    CPU (~0.3 s a GB of text) and win no time."""
    shard = open_shard(path)
    first = 0
    try:
        for batch in shard.iter_batches(batch_size=batch_size, columns=columns, use_threads=threads):
            check_utf8(path, batch, first)
            first += batch.num_rows
            yield batch
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: corrupt Parquet data ({_first_line(err)})") from None


def read_table(path: Path, columns: list[str] | None = None) -> pa.Table:
    try:
        table = open_shard(path).read(columns=columns)
    except (pa.ArrowException, OSError) as err:
        raise InputError(f"{path}: corrupt Parquet data ({_first_line(err)})") from None
    check_utf8(path, table)
    return table


def check_utf8(path: Path, data: pa.Table | pa.RecordBatch, first_row: int = 0) -> None:
    """Fail on a string that is not UTF-8, naming file, row and column. Parquet does not check it on read,
    so without this a bad byte crashes a stage in Python or is copied into shards polars cannot read.
    Full validation runs at ~13 GB/s; the slow search for the row happens only on failure."""
    try:
        data.validate(full=True)
        return
    except pa.ArrowInvalid as err:
        reason = _first_line(err)
    for name, column in zip(data.schema.names, data.columns):
        if isinstance(column, pa.ChunkedArray):
            column = column.combine_chunks()
        try:
            column.validate(full=True)
            continue
        except pa.ArrowInvalid:
            pass
        row = next(i for i in range(len(column)) if not _valid(column.slice(i, 1)))
        raise InputError(
            f"{path}: row {first_row + row} (0-based), column '{name}': a string is not valid UTF-8 "
            "(re-encode the file as UTF-8)"
        )
    raise InputError(f"{path}: invalid Arrow data ({reason})")


def _valid(array: pa.Array) -> bool:
    """Whether the strings of ``array`` decode (a slice of a nested array validates its whole child)."""
    try:
        array.to_pylist()
    except UnicodeDecodeError:
        return False
    return True


def writer_options(schema: pa.Schema) -> dict:
    """How every shard is encoded: zstd; dictionaries and statistics on the short columns only (a trace's
    text gains nothing from either). ``vote_splice`` encodes its label chunks with the same options."""
    short = [name for name in schema.names if name not in LONG_TEXT]
    return {"compression": COMPRESSION, "use_dictionary": short, "write_statistics": short}


class ShardWriter:
    """Writes one Parquet file with zstd and bounded row groups; opened lazily on the first batch."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path, self.schema, self.rows = path, schema, 0
        self._writer = pq.ParquetWriter(path, schema, **writer_options(schema))

    def write(self, table: pa.Table | pa.RecordBatch) -> None:
        if isinstance(table, pa.RecordBatch):
            table = pa.Table.from_batches([table])
        if table.num_rows:
            self._writer.write_table(table.cast(self.schema), row_group_size=ROW_GROUP_ROWS)
            self.rows += table.num_rows

    def close(self) -> None:
        self._writer.close()


def write_table(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def reject_nulls(
    path: Path, table: pa.Table | pa.RecordBatch, columns: list[str], first_row: int = 0
) -> None:
    """One line naming the file, the column and the first row (1-based, counting from ``first_row``) when
    a column that must hold a value holds a null: "null question_id in FILE ..."."""
    for name in columns:
        column = table.column(name)
        if column.null_count:
            row = first_row + pc.index(pc.is_null(column), True).as_py() + 1
            raise InputError(
                f"null {name} in {path} (column '{name}', {column.null_count} rows, first: row {row}); "
                "drop those rows: a row without one cannot be labeled or scored"
            )
