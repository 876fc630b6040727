"""Pass 3 of `vote` without re-encoding the text: copy the input's column chunks, add the label columns.

    written = splice_shard(Path("math/train-00003-of-00213.parquet"), labels, Path("out/.part-00003.parquet"))
    # False: the input's layout does not allow it (the caller re-encodes the shard, as before)

Writing a shard back with three small columns attached used to decompress and recompress its ~50 KB
traces: about half of an 850k-trace run. Parquet stores each column of a row group as one contiguous,
self-contained chunk located by offsets in the file's footer, so the output can be made of the input's
chunks copied byte for byte, each row group followed by that row group's label chunks (written by
pyarrow into a small side file with the same row-group sizes), and a new footer: the input's and the
labels' chunk metadata with their offsets moved, under the schema and Arrow metadata pyarrow writes for
``TRAJECTORY_SCHEMA``. The result is one ordinary Parquet file, as ``ShardWriter`` would write it (same
schema, same values; tests/test_vote_splice.py reads both with pyarrow, polars and datasets).

Used only when the layout is known: the input's schema is exactly the ``filter`` output schema as pyarrow
writes it, its row groups are non-empty, and it has no page indexes, bloom filters or encryption (whose
offsets live outside the chunks); and only when every row of the shard is kept (no ``--num-shards``).

The footer is Thrift compact protocol, read and written by ``io.parquet_footer``, which keeps every field
it does not change as it was (field ids and types), so only the offsets and sizes named below are rewritten.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .filter import OUTPUT_SCHEMA as FILTER_SCHEMA
from .io.parquet_footer import (
    _BINARY,
    _FILE_CREATED_BY,
    _FILE_GROUPS,
    _FILE_ROWS,
    _FILE_SCHEMA,
    _GROUP_BYTES,
    _GROUP_COLUMNS,
    _GROUP_COMPRESSED,
    _GROUP_OFFSET,
    _GROUP_ORDINAL,
    _GROUP_ROWS,
    _I16,
    _I64,
    _LIST,
    _STRUCT,
    MAGIC,
    _file_footer,
    _footer,
    _get,
    _groups,
    _moved,
    _set,
    _spans,
    _template,
    _write_struct,
)
from .io.shards import writer_options


def splice_shard(source: Path, labels: pa.Table, target: Path, head: pa.Schema = FILTER_SCHEMA) -> bool:
    """Write ``target`` = ``source`` (every row, the ``filter`` schema ``head``: the OpenThoughts3 layout,
    or that with a gold) with ``labels``' columns attached
    (row k of ``labels`` to row k of ``source``) by copying ``source``'s column chunks; ``False`` (and
    nothing written) when ``source``'s layout is not one this can copy (see the module doc).

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


def _splice(source: Path, labels: pa.Table, target: Path, head_schema: pa.Schema) -> bool:
    label_schema = labels.schema
    full = pa.schema(list(head_schema) + list(label_schema))
    template, head = _template(full), _template(head_schema)
    label_template = _template(label_schema)
    footer, _ = _file_footer(source)
    leaf = len(head_schema)
    elements = _get(template, _FILE_SCHEMA)[1]
    if (
        _get(footer, _FILE_SCHEMA) != _get(head, _FILE_SCHEMA)
        or elements[1 : leaf + 1] != _get(head, _FILE_SCHEMA)[1][1:]
        or elements[leaf + 1 :] != _get(label_template, _FILE_SCHEMA)[1][1:]
        or any(f not in (1, 2, 3, 4, 5, 6, 7) for f, _, _ in footer)
        or _get(footer, _FILE_ROWS) != labels.num_rows
    ):
        return False
    groups = _groups(footer)
    sizes = [_get(group, _GROUP_ROWS) for group in groups]
    spans = [_spans(group) for group in groups]
    if not groups or 0 in sizes or any(span is None for span in spans):
        return False

    side = io.BytesIO()  # the labels, one row group per source row group
    with pq.ParquetWriter(side, label_schema, **writer_options(label_schema)) as writer:
        start = 0
        for size in sizes:
            writer.write_table(labels.slice(start, size), row_group_size=size)
            start += size
    side_bytes = side.getvalue()
    side_groups = _groups(_footer(side_bytes))
    side_spans = [_spans(group) for group in side_groups]
    if len(side_groups) != len(groups) or any(span is None for span in side_spans):
        return False

    new_groups = []
    with open(source, "rb") as src, open(target, "wb") as out:
        out.write(MAGIC)
        for ordinal, (group, span, side_group, side_span) in enumerate(
            zip(groups, spans, side_groups, side_spans)
        ):
            position = out.tell()
            begin, end = min(s for s, _ in span), max(e for _, e in span)
            src.seek(begin)
            out.write(src.read(end - begin))
            side_begin, side_end = min(s for s, _ in side_span), max(e for _, e in side_span)
            side_position = out.tell()
            out.write(side_bytes[side_begin:side_end])
            columns = [_moved(c, position - begin) for c in _get(group, _GROUP_COLUMNS)[1]]
            columns += [_moved(c, side_position - side_begin) for c in _get(side_group, _GROUP_COLUMNS)[1]]
            fields = _set(group, _GROUP_COLUMNS, _LIST, (_STRUCT, columns))
            total = _get(group, _GROUP_BYTES) + _get(side_group, _GROUP_BYTES)
            fields = _set(fields, _GROUP_BYTES, _I64, total)
            fields = _set(fields, _GROUP_OFFSET, _I64, position)
            fields = _set(fields, _GROUP_COMPRESSED, _I64, out.tell() - position)
            new_groups.append(_set(fields, _GROUP_ORDINAL, _I16, ordinal))
        merged = [(f, k, v) for f, k, v in template if f not in (_FILE_ROWS, _FILE_GROUPS, _FILE_CREATED_BY)]
        merged = _set(merged, _FILE_ROWS, _I64, labels.num_rows)
        merged = _set(merged, _FILE_GROUPS, _LIST, (_STRUCT, new_groups))
        if (created_by := _get(footer, _FILE_CREATED_BY)) is not None:
            merged = _set(merged, _FILE_CREATED_BY, _BINARY, created_by)
        encoded = bytearray()
        _write_struct(encoded, merged)
        out.write(bytes(encoded))
        out.write(struct.pack("<I", len(encoded)))
        out.write(MAGIC)
    return True
