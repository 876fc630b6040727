"""The two halves of ``filter``'s work on one shard, whatever the raw layout (one task each in a pool).

    columns = raw.check(path, schema)    # the layout's reader: what to read here, or a one-line error
    index = index_shard(path, raw, columns, Path("out/.text-00003.parquet"))                 # pass 1
    rows = finish_shard(Path("out/.text-00003.parquet"), ranks, Path("out/.part-00003.parquet"),
                        output_schema(raw.extra))                                            # pass 2

A raw layout is read by a ``Reader`` (``filter_ot3.OpenThoughts3``, ``formats.Format``): it checks a
shard's columns and turns each record batch into the usable trajectories (``CANONICAL``, plus the
layout's ``extra`` columns such as ``gold``) and a drop reason for each row or trace it left out.
Pass 1 reads the raw shard once; this module adds ``question_id`` and ``finished`` and writes every
column but ``sample_idx`` (the text) in row groups of ``ROW_GROUP_ROWS`` kept rows. What leaves the task
is the small per-row index ranking needs: each kept row's question id and response digest as two uint64
(16 bytes a row, +1 where the layout has a gold), in row order. Pass 2, once every shard's index is known,
writes the ranks into a one-column file with the same row groups and splices the two (``io.splice``): the
text is copied chunk by chunk, never decoded again. The result is, byte for byte, the shard
``ShardWriter`` writes for the whole table; if the splice is refused or does not read back, the shard is
encoded again (same bytes).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .answers.extract import TAIL_BYTES, THINK_CLOSE, THINK_OPEN
from .io.ids import question_id
from .io.shards import ROW_GROUP_ROWS, ShardWriter, TypeCheck, iter_batches
from .io.splice import splice_columns

CANONICAL = pa.schema(  # what a reader gives for each usable trajectory, before its extra columns
    [
        ("question", pa.string()),
        ("response", pa.string()),
        ("source", pa.string()),
        ("difficulty", pa.int64()),
    ]
)

OUTPUT_SCHEMA = pa.schema(  # question_id, sample_idx, question, response, source, difficulty, finished
    [("question_id", pa.string()), ("sample_idx", pa.int64()), *CANONICAL, ("finished", pa.bool_())]
)
RANK_SCHEMA = pa.schema([OUTPUT_SCHEMA.field("sample_idx")])


def output_schema(extra: Sequence[pa.Field] = ()) -> pa.Schema:
    """What ``filter`` writes: ``OUTPUT_SCHEMA``, then the layout's extra columns (``gold``, ...)."""
    return pa.schema([*OUTPUT_SCHEMA, *extra])


def _text_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([f for f in schema if f.name != "sample_idx"])


class Reader(Protocol):
    """A raw layout, for ``filter``: shared by the worker threads, so it holds no state."""

    name: str  # the --format
    columns: dict[str, tuple[str, TypeCheck]]  # the columns every shard must have
    extra: tuple[pa.Field, ...]  # output columns after OUTPUT_SCHEMA's (gold, dataset_verdict)

    def check(self, path: Path, schema: pa.Schema) -> list[str]:
        """The columns to read from this shard; an ``InputError`` naming format, file and column else."""
        ...

    def read(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Array]:
        """``(usable trajectories: CANONICAL + extra, in input order; a reason per row or trace left out,
        null where one was kept)``."""
        ...

    def notes(self, batch: pa.RecordBatch) -> Counter:
        """Counts worth a line in the summary about rows that were kept (e.g. a gold withheld)."""
        ...

    def card(self) -> tuple[str, str]:
        """The output's dataset card: title and text."""
        ...

    def nothing_kept(self) -> str:
        """What the error says when no row of the input could be used."""
        ...


@dataclass
class ShardIndex:
    """What pass 1 returns for one shard: counts, and per kept row (in order) its question id and the
    blake2b-64 digest of its response, both as the big-endian uint64 of their bytes (so the order of the
    numbers is the order of the hex id and of the digest bytes)."""

    rows: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    question_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    digests: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    golds: np.ndarray | None = None  # per kept row: has a gold (layouts with a ``gold`` column)

    @property
    def kept(self) -> int:
        return len(self.question_ids)


def bools(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null = False (without ``to_numpy(zero_copy_only=False)``, whose
    first call imports pandas: ~0.5 s of CPU in every worker)."""
    return pc.fill_null(mask, False).cast(pa.uint8()).to_numpy().astype(bool)


def blank(values: pa.Array) -> np.ndarray:
    """Null, empty or only whitespace by Python's ``str.strip`` (the rule for a question or trace that
    cannot be used, in every layout); a text is read whole only when its first character is whitespace
    (its first character alone is decoded otherwise)."""
    leads = pc.utf8_slice_codeunits(values, 0, 1).to_pylist()
    out = np.zeros(len(values), dtype=bool)
    for i, lead in enumerate(leads):
        if not lead or lead.isspace():
            text = values[i].as_py()
            out[i] = not (text or "").strip()
    return out


def response_digests(responses: pa.Array) -> np.ndarray:
    """blake2b (8 bytes) of each string's UTF-8 bytes, hashed in place in the Arrow buffer (hashlib
    releases the GIL while it hashes), as uint64."""
    width = 8 if pa.types.is_large_string(responses.type) else 4
    _, offsets, data = responses.buffers()
    count, skip = len(responses) + 1, responses.offset * width
    ends = np.frombuffer(offsets, dtype=f"<i{width}", count=count, offset=skip).tolist()
    view = memoryview(data) if data is not None else memoryview(b"")
    digests = b"".join(
        hashlib.blake2b(view[start:end], digest_size=8).digest() for start, end in zip(ends[:-1], ends[1:])
    )
    return np.frombuffer(digests, dtype=">u8").astype(np.uint64)


def finished(responses: pa.Array) -> pa.Array:
    """``extract.is_finished`` over a column: a ``</think>`` anywhere, or no ``<think>`` at all. Looked
    for in each trace's last ``TAIL_BYTES`` first, where it sits; only the other traces are searched whole
    (a match in the bytes is a match in the text: UTF-8 never puts ASCII bytes inside a character)."""
    binary = responses.view(pa.large_binary() if pa.types.is_large_string(responses.type) else pa.binary())
    done = bools(pc.match_substring(pc.binary_slice(binary, -TAIL_BYTES), THINK_CLOSE))
    rest = np.flatnonzero(~done)
    if rest.size:
        whole = binary.take(rest)
        closed = bools(pc.match_substring(whole, THINK_CLOSE))
        done[rest] = closed | ~bools(pc.match_substring(whole, THINK_OPEN))
    return pa.array(done, pa.bool_())


class _Ids:
    """``question_id`` with a cache: the samples of a question mostly sit together."""

    def __init__(self, limit: int = 100_000):
        self.cache: dict[str, str] = {}
        self.limit = limit

    def __call__(self, questions: list[str]) -> list[str]:
        if len(self.cache) > self.limit:
            self.cache.clear()
        cache = self.cache
        return [cache.get(q) or cache.setdefault(q, question_id(q)) for q in questions]


class Stopped(Exception):
    """Another shard failed or the run was interrupted: this one gives up (``filter._each_shard``)."""


def index_shard(
    path: Path, raw: Reader, columns: list[str], text_path: Path, stop: threading.Event | None = None
) -> ShardIndex:
    """Pass 1 for one shard (see the module doc): ``raw`` reads ``columns`` of each record batch. Writes
    ``text_path`` only if some row is kept; gives up at the next record batch once ``stop`` is set."""
    index, ids = ShardIndex(), _Ids()
    schema = _text_schema(output_schema(raw.extra))
    question_ids, digests, golds, pending, waiting = [], [], [], [], 0
    writer = None
    for batch in iter_batches(path, columns=columns, threads=False):
        if stop is not None and stop.is_set():
            raise Stopped(path)
        index.rows += batch.num_rows
        kept, reasons = raw.read(batch)
        index.notes.update(raw.notes(batch))
        if reasons.null_count < len(reasons):
            counts = pc.value_counts(reasons.drop_null())
            index.dropped.update(dict(zip(counts.field(0).to_pylist(), counts.field(1).to_pylist())))
        if kept.num_rows == 0:
            continue
        qids = ids(kept.column("question").to_pylist())
        question_ids.append(np.array([int(q, 16) for q in qids], dtype=np.uint64))
        digests.append(response_digests(kept.column("response")))
        if "gold" in schema.names:
            golds.append(bools(kept.column("gold").is_valid()))
        computed = {"question_id": pa.array(qids, pa.string()), "finished": finished(kept.column("response"))}
        columns_out = [computed[n] if n in computed else kept.column(n) for n in schema.names]
        pending.append(pa.Table.from_arrays(columns_out, schema=schema))
        waiting += kept.num_rows
        while waiting >= ROW_GROUP_ROWS:
            table = pa.concat_tables(pending)
            writer = writer or ShardWriter(text_path, schema)
            writer.write(table.slice(0, ROW_GROUP_ROWS).combine_chunks())  # one chunk, as from_pylist
            pending, waiting = [table.slice(ROW_GROUP_ROWS)], waiting - ROW_GROUP_ROWS
    if waiting:
        writer = writer or ShardWriter(text_path, schema)
        writer.write(pa.concat_tables(pending).combine_chunks())
    if writer is not None:
        writer.close()
        index.question_ids, index.digests = np.concatenate(question_ids), np.concatenate(digests)
        index.golds = np.concatenate(golds) if golds else None
    return index


def rank_samples(indexes: list[ShardIndex]) -> tuple[list[np.ndarray], int]:
    """``sample_idx`` of every kept row, one array per shard (shards in order), and the number of
    questions: a question's samples ranked by response digest; identical responses by shard, then row."""
    question_ids = np.concatenate([i.question_ids for i in indexes])
    order = np.lexsort((np.concatenate([i.digests for i in indexes]), question_ids))  # stable
    grouped = question_ids[order]
    starts = np.flatnonzero(np.r_[True, grouped[1:] != grouped[:-1]]) if len(grouped) else grouped
    sizes = np.diff(np.r_[starts, len(grouped)])
    ranks = np.empty(len(grouped), dtype=np.int64)
    ranks[order] = np.arange(len(grouped)) - np.repeat(starts, sizes)
    bounds = np.cumsum([0] + [i.kept for i in indexes])
    return [ranks[a:b] for a, b in zip(bounds[:-1], bounds[1:])], len(starts)


def finish_shard(text_path: Path, ranks: np.ndarray, target: Path, schema: pa.Schema = OUTPUT_SCHEMA) -> int:
    """Pass 2 for one shard: ``target`` = the text file with ``sample_idx`` = ``ranks`` in second place,
    as ``schema`` (``output_schema`` of the layout). Removes ``text_path``; returns the rows written."""
    sizes = [group.num_rows for group in _row_groups(text_path)]
    side = target.with_name(target.name + ".ranks")
    writer, start = ShardWriter(side, RANK_SCHEMA), 0
    column = pa.array(ranks, pa.int64())
    for size in sizes:
        writer.write(pa.Table.from_arrays([column.slice(start, size)], schema=RANK_SCHEMA))
        start += size
    writer.close()
    spliced = splice_columns([text_path, side], schema, target)
    if not (spliced and _reads_back(target, text_path, column, schema)):
        _encode(text_path, column, target, schema)
    side.unlink()
    text_path.unlink()
    return len(ranks)


def _row_groups(path: Path):
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i) for i in range(metadata.num_row_groups)]


def _reads_back(target: Path, text_path: Path, ranks: pa.Array, schema: pa.Schema) -> bool:
    """The spliced file has the schema and, in its small columns, the values it should have."""
    try:
        written = pq.ParquetFile(target)
        if not written.schema_arrow.equals(schema):
            return False
        back = written.read(columns=["question_id", "sample_idx"])
        ids = pq.read_table(text_path, columns=["question_id"]).column(0)
        return back.column("sample_idx").equals(pa.chunked_array([ranks])) and back.column(0).equals(ids)
    except (OSError, pa.ArrowException):
        return False


def _encode(text_path: Path, ranks: pa.Array, target: Path, schema: pa.Schema) -> None:
    """The same file, made by decoding the text and encoding it again (the splice's fallback)."""
    source, writer, start = pq.ParquetFile(text_path), ShardWriter(target, schema), 0
    for g in range(source.metadata.num_row_groups):
        table = source.read_row_group(g)
        table = table.add_column(1, schema.field("sample_idx"), ranks.slice(start, table.num_rows))
        writer.write(table.combine_chunks())
        start += table.num_rows
    writer.close()
