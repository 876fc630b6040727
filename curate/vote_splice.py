"""Pass 3 of `vote` without re-encoding the text: copy the input's column chunks, add the label columns.

    written = splice_shard(Path("math/train-00003-of-00213.parquet"), labels, Path("out/.part-00003.parquet"),
                           trajectory_layout(gold=True))
    # False: the input's layout does not allow it (the caller re-encodes the shard, as before)

Writing a shard back with three small columns attached used to decompress and recompress its ~50 KB
traces: about half of an 850k-trace run. Parquet stores each column of a row group as one contiguous,
self-contained chunk, so the output is the input's chunks copied byte for byte, each row group followed
by that row group's label chunks (written by pyarrow into a small side file with the same row-group
sizes), under a new footer (``io.splice``, which ``filter`` uses to add ``sample_idx`` the same way). The
result is one ordinary Parquet file, as ``ShardWriter`` would write it (same schema, same values;
tests/test_vote_splice.py reads both with pyarrow, polars and datasets).

Used only when the layout is known: the input's schema is exactly ``head``, one of the schemas ``filter``
writes (``formats.canonical.trajectory_layout``: OpenThoughts3's columns, plus ``gold`` and
``dataset_verdict`` where the set has them) as pyarrow writes it, its row groups are non-empty, and it has
no page indexes, bloom filters or encryption (whose offsets live outside the chunks); and only when every
row of the shard is kept (no ``--num-shards``).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .filter_shard import OUTPUT_SCHEMA as FILTER_SCHEMA
from .io.shards import writer_options
from .io.splice import splice_columns


def splice_shard(source: Path, labels: pa.Table, target: Path, head: pa.Schema = FILTER_SCHEMA) -> bool:
    """Write ``target`` = ``source`` (every row, in the ``filter`` schema ``head``) with ``labels``'
    columns attached (row k of ``labels`` to row k of ``source``) by copying ``source``'s column chunks;
    ``False`` (and nothing written) when ``source``'s layout is not one this can copy (module doc).

    The spliced file is read back before it counts: its schema, its label columns and its small key
    columns (question_id, sample_idx: they locate the copied chunks) must equal what they should be, so a
    footer this module got wrong costs a re-encode, never a corrupt shard."""
    if not _splice(source, labels, target, head):
        return False
    if _reads_back(source, labels, target, head):
        return True
    target.unlink(missing_ok=True)
    return False


def _reads_back(source: Path, labels: pa.Table, target: Path, head: pa.Schema) -> bool:
    keys = ["question_id", "sample_idx"]
    try:
        written = pq.ParquetFile(target)
        full = pa.schema(list(head) + list(labels.schema))
        if not written.schema_arrow.equals(full, check_metadata=False):
            return False
        back = written.read(columns=keys + labels.column_names)
        return back.select(labels.column_names).equals(labels) and back.select(keys).equals(
            pq.read_table(source, columns=keys)
        )
    except (OSError, pa.ArrowException):
        return False


def _splice(source: Path, labels: pa.Table, target: Path, head: pa.Schema) -> bool:
    """The labels written beside ``target`` in ``source``'s row groups, then the two files spliced."""
    try:
        metadata = pq.ParquetFile(source).metadata
    except (OSError, pa.ArrowException):
        return False
    if metadata.num_rows != labels.num_rows:
        return False
    side = target.with_name(target.name + ".labels")
    try:
        with pq.ParquetWriter(side, labels.schema, **writer_options(labels.schema)) as writer:
            start = 0
            for g in range(metadata.num_row_groups):
                size = metadata.row_group(g).num_rows
                writer.write_table(labels.slice(start, size), row_group_size=max(size, 1))
                start += size
        return splice_columns([source, side], pa.schema([*head, *labels.schema]), target)
    finally:
        side.unlink(missing_ok=True)
