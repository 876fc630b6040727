"""The two halves of ``filter``'s work on one shard, whatever the raw layout (one task each in a pool).

    index = index_shard(Path("raw/train-00003.parquet"), raw, Path("out/.text-00003.parquet"))   # pass 1
    rows = finish_shard(Path("out/.text-00003.parquet"), ranks, Path("out/.part-00003.parquet"))   # pass 2

Pass 1 reads the raw shard once: the layout's reader (``filter_ot3``) turns each record batch into the
usable trajectories and a drop reason per unusable row; this module adds ``question_id`` and ``finished``
and writes every column but ``sample_idx`` (the text) in row groups of ``ROW_GROUP_ROWS`` kept rows. What
leaves the task is the small per-row index ranking needs: each kept row's question id and response digest
as two uint64 (16 bytes a row), in row order. Pass 2, once every shard's index is known, writes the ranks
into a one-column file with the same row groups and splices the two (``io.splice``): the text is copied
chunk by chunk, never decoded again. The result is, byte for byte, the shard ``ShardWriter`` writes for
the whole table; if the splice is refused or does not read back, the shard is encoded again (same bytes).
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .answers.extract import TAIL_BYTES, THINK_CLOSE, THINK_OPEN
from .io.ids import question_id
from .io.shards import ROW_GROUP_ROWS, ShardWriter, iter_batches
from .io.splice import splice_columns

OUTPUT_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("sample_idx", pa.int64()),
        ("question", pa.string()),
        ("response", pa.string()),
        ("source", pa.string()),
        ("difficulty", pa.int64()),
        ("finished", pa.bool_()),
    ]
)
TEXT_SCHEMA = pa.schema([f for f in OUTPUT_SCHEMA if f.name != "sample_idx"])
RANK_SCHEMA = pa.schema([OUTPUT_SCHEMA.field("sample_idx")])


@dataclass
class ShardIndex:
    """What pass 1 returns for one shard: counts, and per kept row (in order) its question id and the
    blake2b-64 digest of its response, both as the big-endian uint64 of their bytes (so the order of the
    numbers is the order of the hex id and of the digest bytes)."""

    rows: int = 0
    dropped: Counter = field(default_factory=Counter)
    question_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))
    digests: np.ndarray = field(default_factory=lambda: np.empty(0, np.uint64))

    @property
    def kept(self) -> int:
        return len(self.question_ids)


def bools(mask: pa.Array) -> np.ndarray:
    """A boolean Arrow array as numpy, null = False (without ``to_numpy(zero_copy_only=False)``, whose
    first call imports pandas: ~0.5 s of CPU in every worker)."""
    return pc.fill_null(mask, False).cast(pa.uint8()).to_numpy().astype(bool)


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


def index_shard(path: Path, raw, text_path: Path, stop: threading.Event | None = None) -> ShardIndex:
    """Pass 1 for one shard (see the module doc); ``raw`` is the layout's reader (``columns``, ``read``).
    Writes ``text_path`` only if some row is kept; gives up at the next record batch once ``stop`` is set."""
    index, ids = ShardIndex(), _Ids()
    question_ids, digests, pending, waiting = [], [], [], 0
    writer = None
    for batch in iter_batches(path, columns=list(raw.columns), threads=False):
        if stop is not None and stop.is_set():
            raise Stopped(path)
        index.rows += batch.num_rows
        kept, reasons = raw.read(batch)
        if reasons.null_count < len(reasons):
            counts = pc.value_counts(reasons.drop_null())
            index.dropped.update(dict(zip(counts.field(0).to_pylist(), counts.field(1).to_pylist())))
        if kept.num_rows == 0:
            continue
        qids = ids(kept.column("question").to_pylist())
        question_ids.append(np.array([int(q, 16) for q in qids], dtype=np.uint64))
        digests.append(response_digests(kept.column("response")))
        computed = {"question_id": pa.array(qids, pa.string()), "finished": finished(kept.column("response"))}
        columns = [computed[n] if n in computed else kept.column(n) for n in TEXT_SCHEMA.names]
        pending.append(pa.Table.from_arrays(columns, schema=TEXT_SCHEMA))
        waiting += kept.num_rows
        while waiting >= ROW_GROUP_ROWS:
            table = pa.concat_tables(pending)
            writer = writer or ShardWriter(text_path, TEXT_SCHEMA)
            writer.write(table.slice(0, ROW_GROUP_ROWS).combine_chunks())  # one chunk, as from_pylist
            pending, waiting = [table.slice(ROW_GROUP_ROWS)], waiting - ROW_GROUP_ROWS
    if waiting:
        writer = writer or ShardWriter(text_path, TEXT_SCHEMA)
        writer.write(pa.concat_tables(pending).combine_chunks())
    if writer is not None:
        writer.close()
        index.question_ids, index.digests = np.concatenate(question_ids), np.concatenate(digests)
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


def finish_shard(text_path: Path, ranks: np.ndarray, target: Path) -> int:
    """Pass 2 for one shard: ``target`` = the text file with ``sample_idx`` = ``ranks`` in second place.
    Removes ``text_path``; returns the rows written."""
    sizes = [group.num_rows for group in _row_groups(text_path)]
    side = target.with_name(target.name + ".ranks")
    writer, start = ShardWriter(side, RANK_SCHEMA), 0
    column = pa.array(ranks, pa.int64())
    for size in sizes:
        writer.write(pa.Table.from_arrays([column.slice(start, size)], schema=RANK_SCHEMA))
        start += size
    writer.close()
    spliced = splice_columns([text_path, side], OUTPUT_SCHEMA, target)
    if not (spliced and _reads_back(target, text_path, column)):
        _encode(text_path, column, target)
    side.unlink()
    text_path.unlink()
    return len(ranks)


def _row_groups(path: Path):
    metadata = pq.ParquetFile(path).metadata
    return [metadata.row_group(i) for i in range(metadata.num_row_groups)]


def _reads_back(target: Path, text_path: Path, ranks: pa.Array) -> bool:
    """The spliced file has the schema and, in its small columns, the values it should have."""
    try:
        written = pq.ParquetFile(target)
        if not written.schema_arrow.equals(OUTPUT_SCHEMA):
            return False
        back = written.read(columns=["question_id", "sample_idx"])
        ids = pq.read_table(text_path, columns=["question_id"]).column(0)
        return back.column("sample_idx").equals(pa.chunked_array([ranks])) and back.column(0).equals(ids)
    except (OSError, pa.ArrowException):
        return False


def _encode(text_path: Path, ranks: pa.Array, target: Path) -> None:
    """The same file, made by decoding the text and encoding it again (the splice's fallback)."""
    source, writer, start = pq.ParquetFile(text_path), ShardWriter(target, OUTPUT_SCHEMA), 0
    for g in range(source.metadata.num_row_groups):
        table = source.read_row_group(g)
        table = table.add_column(1, OUTPUT_SCHEMA.field("sample_idx"), ranks.slice(start, table.num_rows))
        writer.write(table.combine_chunks())
        start += table.num_rows
    writer.close()
