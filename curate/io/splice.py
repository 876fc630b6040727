"""One Parquet file made of other files' column chunks, copied byte for byte: columns added without
re-encoding the ones already written.

    ok = splice_columns([Path("a.parquet"), Path("b.parquet")], schema, Path("out.parquet"))
    # out.parquet: row group g holds, in ``schema``'s order, the chunks of row group g of a and of b

Why: ``filter`` writes a shard's text before it knows each row's ``sample_idx`` (a rank among every
shard's rows); the text's chunks (~95% of the bytes) are then copied, never decoded and encoded again.
The parts must have been written by this pyarrow with ``writer_options`` (``ShardWriter``), with the same
row-group sizes; each column chunk is self-contained and does not depend on the other columns, so the
spliced file is, byte for byte, the file ``ShardWriter`` writes for the whole table in row groups of the
same sizes (tests/test_filter_identity.py). The footer is the one pyarrow writes for an empty file of
``schema`` (schema, Arrow metadata) with the parts' row groups, their offsets moved, and the first part's
writer version (``created_by``: readers decide by it which statistics to trust, so chunks copied from
another writer's file keep it). ``vote`` adds its label columns to ``filter``'s shards the same way
(``vote_splice``).

Refused (``False``, nothing written): a column in none or several parts, another type or encoding of a
column than ``schema`` gives it, nested columns, row groups of other sizes, chunks with parts outside
their bytes (page indexes, bloom filters, encryption).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pyarrow as pa

from .parquet_footer import (
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
    Struct,
    _file_footer,
    _get,
    _groups,
    _moved,
    _set,
    _spans,
    _template,
    _write_struct,
)

_FILE_FIELDS = {1, 2, 3, 4, 5, 6, 7}  # version, schema, rows, row groups, key-value, created by, orders


def _columns_of(footer: Struct) -> list[Struct] | None:
    """The leaf schema elements of a flat schema (root, then one element per column); ``None`` if nested."""
    elements = _get(footer, _FILE_SCHEMA)[1]
    root, leaves = elements[0], elements[1:]
    if _get(root, 5) != len(leaves) or any(_get(leaf, 5) is not None for leaf in leaves):
        return None  # field 5: num_children, set on groups only
    return leaves


def _name(element: Struct) -> str:
    return _get(element, 4).decode()


def _plan(parts: list[Path], schema: pa.Schema):
    """``(template, [(part, chunk index)] per schema column, the parts' footers)`` or ``None``."""
    template = _template(schema)
    wanted = _columns_of(template)
    footers = []
    for part in parts:
        footer, _ = _file_footer(part)
        if any(f not in _FILE_FIELDS for f, _, _ in footer) or _columns_of(footer) is None:
            return None
        footers.append(footer)
    where: dict[str, tuple[int, int]] = {}
    elements: dict[str, Struct] = {}
    for p, footer in enumerate(footers):
        for c, element in enumerate(_columns_of(footer)):
            if _name(element) in where:
                return None
            where[_name(element)] = (p, c)
            elements[_name(element)] = element
    if wanted is None or sorted(where) != sorted(schema.names):
        return None
    if any(elements[_name(element)] != element for element in wanted):
        return None  # another physical or logical type than the schema's
    sizes = [[_get(group, _GROUP_ROWS) for group in _groups(footer)] for footer in footers]
    if any(s != sizes[0] for s in sizes) or not sizes[0] or 0 in sizes[0]:
        return None
    return template, [where[name] for name in schema.names], footers


def _copy(source, target, start: int, size: int) -> None:
    """``size`` bytes of ``source`` from ``start`` to the end of ``target``: in the kernel where it can."""
    done = 0
    with contextlib.suppress(OSError, AttributeError):
        while done < size:
            copied = os.copy_file_range(source.fileno(), target.fileno(), size - done, start + done)
            if copied == 0:
                break
            done += copied
    if done < size:
        source.seek(start + done)
        target.write(source.read(size - done))


def splice_columns(parts: list[Path], schema: pa.Schema, target: Path) -> bool:
    """Write ``target`` with ``schema``'s columns taken from ``parts`` (see the module doc); ``False`` and
    nothing written when the parts cannot be spliced."""
    plan = _plan(parts, schema)
    if plan is None:
        return False
    template, columns, footers = plan
    part_groups = [_groups(footer) for footer in footers]
    part_spans = [[_spans(group) for group in groups] for groups in part_groups]
    if any(span is None for spans in part_spans for span in spans):
        return False
    files = [open(part, "rb") for part in parts]  # noqa: SIM115 - closed below
    try:
        with open(target, "wb", buffering=0) as out:
            out.write(MAGIC)
            new_groups = []
            for g, first in enumerate(part_groups[0]):
                position, chunks, total = out.tell(), [], 0
                for p, c in columns:
                    start, end = part_spans[p][g][c]
                    chunk = _get(part_groups[p][g], _GROUP_COLUMNS)[1][c]
                    chunks.append(_moved(chunk, out.tell() - start))
                    _copy(files[p], out, start, end - start)
                total = sum(_get(groups[g], _GROUP_BYTES) for groups in part_groups)
                fields = _set(first, _GROUP_COLUMNS, _LIST, (_STRUCT, chunks))
                fields = _set(fields, _GROUP_BYTES, _I64, total)
                fields = _set(fields, _GROUP_OFFSET, _I64, position)
                fields = _set(fields, _GROUP_COMPRESSED, _I64, out.tell() - position)
                if _get(first, _GROUP_ORDINAL) is not None:
                    fields = _set(fields, _GROUP_ORDINAL, _I16, g)
                new_groups.append(fields)
            rows = sum(_get(group, _GROUP_ROWS) for group in part_groups[0])
            footer = _set(template, _FILE_ROWS, _I64, rows)
            footer = _set(footer, _FILE_GROUPS, _LIST, (_STRUCT, new_groups))
            if (created_by := _get(footers[0], _FILE_CREATED_BY)) is not None:
                footer = _set(footer, _FILE_CREATED_BY, _BINARY, created_by)
            encoded = bytearray()
            _write_struct(encoded, footer)
            out.write(bytes(encoded) + len(encoded).to_bytes(4, "little") + MAGIC)
    finally:
        for file in files:
            file.close()
    return True
