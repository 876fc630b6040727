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

The footer is Thrift compact protocol; ``_read_struct``/``_write_struct`` keep every field they do not
change as it was (field ids and types), so only the offsets and sizes named below are rewritten.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .filter import OUTPUT_SCHEMA as FILTER_SCHEMA
from .io.shards import writer_options

MAGIC = b"PAR1"
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(13)
# Field ids (parquet.thrift): FileMetaData, RowGroup, ColumnChunk, ColumnMetaData.
_FILE_SCHEMA, _FILE_ROWS, _FILE_GROUPS, _FILE_KV, _FILE_CREATED_BY, _FILE_ORDERS = 2, 3, 4, 5, 6, 7
_GROUP_COLUMNS, _GROUP_BYTES, _GROUP_ROWS, _GROUP_OFFSET, _GROUP_COMPRESSED, _GROUP_ORDINAL = 1, 2, 3, 5, 6, 7
_CHUNK_OFFSET, _CHUNK_META = 2, 3
_CHUNK_ELSEWHERE = {1, 4, 5, 6, 7, 8, 9}  # another file, page indexes, encryption: not in the chunk's bytes
_META_BYTES, _META_COMPRESSED, _META_DATA_PAGE, _META_INDEX_PAGE, _META_DICT_PAGE = 6, 7, 9, 10, 11
_META_BLOOM = 14

Struct = list  # [(field id, type, value)], in the order read


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7


def _zigzag(n: int) -> int:
    return (n >> 1) ^ -(n & 1)


def _read_value(data: bytes, pos: int, kind: int):
    if kind in (_TRUE, _FALSE):  # a bool in a list or set is one byte
        return data[pos] == 1, pos + 1
    if kind == _BYTE:
        return struct.unpack_from("b", data, pos)[0], pos + 1
    if kind in (_I16, _I32, _I64):
        raw, pos = _varint(data, pos)
        return _zigzag(raw), pos
    if kind == _DOUBLE:
        return struct.unpack_from("<d", data, pos)[0], pos + 8
    if kind == _BINARY:
        size, pos = _varint(data, pos)
        return data[pos : pos + size], pos + size
    if kind in (_LIST, _SET):
        header = data[pos]
        pos += 1
        size, element = header >> 4, header & 0x0F
        if size == 15:
            size, pos = _varint(data, pos)
        items = []
        for _ in range(size):
            item, pos = _read_value(data, pos, element)
            items.append(item)
        return (element, items), pos
    if kind == _STRUCT:
        return _read_struct(data, pos)
    raise ValueError(f"unsupported Thrift type {kind} in a Parquet footer")


def _read_struct(data: bytes, pos: int) -> tuple[Struct, int]:
    fields, last = [], 0
    while True:
        header = data[pos]
        pos += 1
        kind = header & 0x0F
        if kind == _STOP:
            return fields, pos
        delta = header >> 4
        if delta:
            field = last + delta
        else:
            raw, pos = _varint(data, pos)
            field = _zigzag(raw)
        if kind in (_TRUE, _FALSE):
            value = kind == _TRUE
        else:
            value, pos = _read_value(data, pos, kind)
        fields.append((field, kind, value))
        last = field


def _put_varint(out: bytearray, n: int) -> None:
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _write_value(out: bytearray, kind: int, value) -> None:
    if kind in (_TRUE, _FALSE):
        out.append(1 if value else 2)
    elif kind == _BYTE:
        out += struct.pack("b", value)
    elif kind in (_I16, _I32, _I64):
        _put_varint(out, (value << 1) ^ (value >> 63))
    elif kind == _DOUBLE:
        out += struct.pack("<d", value)
    elif kind == _BINARY:
        _put_varint(out, len(value))
        out += value
    elif kind in (_LIST, _SET):
        element, items = value
        if len(items) < 15:
            out.append(len(items) << 4 | element)
        else:
            out.append(0xF0 | element)
            _put_varint(out, len(items))
        for item in items:
            _write_value(out, element, item)
    elif kind == _STRUCT:
        _write_struct(out, value)
    else:
        raise ValueError(f"unsupported Thrift type {kind}")


def _write_struct(out: bytearray, fields: Struct) -> None:
    last = 0
    for field, kind, value in fields:
        wire = (_TRUE if value else _FALSE) if kind in (_TRUE, _FALSE) else kind
        if 0 < field - last <= 15:
            out.append((field - last) << 4 | wire)
        else:
            out.append(wire)
            _put_varint(out, (field << 1) ^ (field >> 63))
        if kind not in (_TRUE, _FALSE):
            _write_value(out, kind, value)
        last = field
    out.append(_STOP)


def _get(fields: Struct, field: int, default=None):
    return next((value for f, _, value in fields if f == field), default)


def _set(fields: Struct, field: int, kind: int, value) -> Struct:
    """``fields`` with ``field`` set (replaced, or inserted in field-id order)."""
    kept = [f for f in fields if f[0] != field]
    return sorted([*kept, (field, kind, value)], key=lambda f: f[0])


def _footer(data: bytes) -> Struct:
    """The FileMetaData of a whole Parquet file's bytes (or of its tail holding the footer)."""
    if data[-4:] != MAGIC:
        raise ValueError("not a Parquet file")
    size = struct.unpack_from("<I", data, len(data) - 8)[0]
    return _read_struct(data, len(data) - 8 - size)[0]


def _file_footer(path: Path) -> tuple[Struct, int]:
    """``(FileMetaData, where the footer starts)`` of the file at ``path``."""
    with open(path, "rb") as f:
        f.seek(-8, io.SEEK_END)
        tail = f.read(8)
        if tail[4:] != MAGIC:
            raise ValueError(f"{path}: not a Parquet file")
        size = struct.unpack("<I", tail[:4])[0]
        f.seek(-8 - size, io.SEEK_END)
        start = f.tell()
        return _read_struct(f.read(size), 0)[0], start


def _template(schema: pa.Schema) -> Struct:
    """The footer pyarrow writes for an empty file of ``schema`` (schema elements, Arrow metadata)."""
    buffer = io.BytesIO()
    pq.ParquetWriter(buffer, schema, **writer_options(schema)).close()
    return _footer(buffer.getvalue())


def _chunk_span(chunk: Struct) -> tuple[int, int] | None:
    """``(start, end)`` of a column chunk's bytes; ``None`` when part of it lives elsewhere."""
    meta = _get(chunk, _CHUNK_META)
    if meta is None or any(f in _CHUNK_ELSEWHERE for f, _, _ in chunk) or _get(meta, _META_BLOOM) is not None:
        return None
    if _get(meta, _META_INDEX_PAGE) is not None:
        return None
    dictionary, data = _get(meta, _META_DICT_PAGE), _get(meta, _META_DATA_PAGE)
    start = data if dictionary is None or dictionary <= 0 else min(dictionary, data)
    return start, start + _get(meta, _META_COMPRESSED)


def _moved(chunk: Struct, delta: int) -> Struct:
    meta = _get(chunk, _CHUNK_META)
    for field in (_META_DATA_PAGE, _META_DICT_PAGE):
        value = _get(meta, field)
        if value is not None and (field == _META_DATA_PAGE or value > 0):
            meta = _set(meta, field, _I64, value + delta)
    chunk = _set(chunk, _CHUNK_META, _STRUCT, meta)
    offset = _get(chunk, _CHUNK_OFFSET)
    if offset:  # 0 = not set (pyarrow >= 13 writes 0 here)
        chunk = _set(chunk, _CHUNK_OFFSET, _I64, offset + delta)
    return chunk


def _groups(footer: Struct) -> list[Struct]:
    return _get(footer, _FILE_GROUPS, (_STRUCT, []))[1]


def _spans(group: Struct) -> list[tuple[int, int]] | None:
    """The byte span of each chunk of a row group, if they are all in the file and contiguous."""
    spans = [_chunk_span(chunk) for chunk in _get(group, _GROUP_COLUMNS)[1]]
    if any(span is None for span in spans):
        return None
    ordered = sorted(spans)
    if any(a[1] != b[0] for a, b in zip(ordered, ordered[1:])):
        return None
    return spans


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
