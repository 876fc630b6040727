"""The hidden folder of a rollout in progress (``.OUT.partial``): its record, finished questions, the merge.

    parts = Parts(output, record, resume=False, overwrite=False)   # refuses a changed record on --resume
    with parts.writer("20250101-1234-e0") as writer:               # one writer per engine
        writer.add(rows)                                           # a finished question's k rows
    parts.finish(output, overwrite=False, questions=n)             # OUT/train-*.parquet, atomically

Engines write finished questions into part files of their own (temporary name, then rename), a part every
``FLUSH_ROWS`` samples or ``FLUSH_SECONDS``, and whatever is buffered when the run stops (an error,
Ctrl-C, SIGTERM from Slurm): only a SIGKILL loses the last minute. A part is sorted by question and holds
one row group per question. ``--resume`` skips the questions found in the parts.

At the end the parts are merged by question id (a k-way merge, one question per part in memory; more than
``MAX_OPEN`` parts are merged in rounds in the output's temporary folder), so the output is the same
files whatever the order questions finished in, however many engines or slices made them.
"""

from __future__ import annotations

import heapq
import json
import os
import shutil
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..curate.io.card import write_card
from ..curate.io.errors import InputError, OutputExistsError
from ..curate.io.shards import ShardWriter, atomic_output, shard_name

ROLLOUT_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("question", pa.string()),
        ("sample_idx", pa.int64()),
        ("response", pa.string()),
        ("finish_reason", pa.string()),
        ("response_tokens", pa.int64()),
    ]
)
SAMPLES_PER_SHARD = 50_000
FLUSH_ROWS = 2048
FLUSH_SECONDS = 60.0
MAX_OPEN = 128
RECORD = "rollout.json"


class Parts:
    """The ``.OUT.partial`` folder: the record a resume must repeat, and the part files."""

    def __init__(self, output: Path, record: dict, resume: bool, overwrite: bool):
        self.folder = output.parent / f".{output.name}.partial"
        path = self.folder / RECORD
        if self.folder.exists() and not resume:
            if not overwrite:
                raise OutputExistsError(
                    f"{self.folder}: an unfinished rollout is there (pass --resume to continue it, "
                    "or --overwrite to start over)"
                )
            shutil.rmtree(self.folder)
        if resume and path.is_file():
            check_same_record(path, record, "the unfinished run in")
        self.created = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        tmp.replace(path)

    def part_files(self) -> list[Path]:
        return sorted(self.folder.glob("part-*.parquet"))

    def done(self) -> set[str]:
        """Question ids already sampled (read from the parts' question_id column)."""
        found: set[str] = set()
        for part in self.part_files():
            found.update(pq.read_table(part, columns=["question_id"]).column(0).unique().to_pylist())
        return found

    def writer(self, tag: str) -> PartWriter:
        return PartWriter(self.folder, tag)

    def discard_if_unused(self) -> None:
        """After a failed start: remove the folder this run created if no question was written to it."""
        if self.created and self.folder.exists() and not self.part_files():
            shutil.rmtree(self.folder, ignore_errors=True)

    def finish(self, output: Path, overwrite: bool, questions: int) -> tuple[int, dict[str, int]]:
        """Merge the parts by question id into ``output`` shards (atomically), then drop the folder."""
        parts = self.part_files()
        rows = sum(pq.ParquetFile(part).metadata.num_rows for part in parts)
        count = max(1, -(-rows // SAMPLES_PER_SHARD))
        reasons: Counter = Counter()
        with atomic_output(output, overwrite) as tmp:
            scratch = tmp / ".merge"
            rounds = 0
            while len(parts) > MAX_OPEN:  # too many files to hold open at once: merge in rounds
                scratch.mkdir(exist_ok=True)
                groups = [parts[i : i + MAX_OPEN] for i in range(0, len(parts), MAX_OPEN)]
                merged = [scratch / f"round{rounds}-{i:05d}.parquet" for i in range(len(groups))]
                for group, target in zip(groups, merged):
                    with pq.ParquetWriter(target, ROLLOUT_SCHEMA, compression="zstd") as out:
                        for _, table in merge_questions(group):
                            out.write_table(table)
                parts, rounds = merged, rounds + 1
            writers = [ShardWriter(tmp / shard_name(i, count), ROLLOUT_SCHEMA) for i in range(count)]
            written = seen = 0
            for _, table in merge_questions(parts):
                seen += 1
                reasons.update(table.column("finish_reason").to_pylist())
                while table.num_rows:
                    writer = writers[written // SAMPLES_PER_SHARD]
                    room = SAMPLES_PER_SHARD - writer.rows
                    writer.write(table.slice(0, room))
                    written += min(room, table.num_rows)
                    table = table.slice(room)
            for writer in writers:
                writer.close()
            shutil.rmtree(scratch, ignore_errors=True)
            if seen != questions:
                raise InputError(
                    f"{self.folder}: the parts hold {seen} questions, {questions} were to be sampled"
                )
            shutil.copy(self.folder / RECORD, tmp / RECORD)
            write_card(
                tmp,
                "Model rollouts (offcurate rollout)",
                ROLLOUT_CARD,
                {"default": ("*.parquet", ROLLOUT_SCHEMA)},
            )
        shutil.rmtree(self.folder)
        return rows, dict(reasons)


def question_tables(path: Path) -> Iterator[tuple[str, pa.Table]]:
    """(question id, its rows) of a sorted part, one row group at a time."""
    source = pq.ParquetFile(path)
    for group in range(source.num_row_groups):
        table = source.read_row_group(group)
        ids = table.column("question_id")
        start = 0
        while start < table.num_rows:
            qid = ids[start].as_py()
            end = start + pc.sum(pc.equal(ids.slice(start), qid)).as_py()
            yield qid, table.slice(start, end - start)
            start = end


def merge_questions(parts: list[Path]) -> Iterator[tuple[str, pa.Table]]:
    """Every question of ``parts`` in question-id order; a question found twice is an error."""
    last = None
    for qid, table in heapq.merge(*(question_tables(p) for p in parts), key=lambda item: item[0]):
        if qid == last:
            raise InputError(f"question {qid} is in two part files; remove the hidden .partial folder")
        last = qid
        yield qid, table


def check_same_record(path: Path, record: dict, what: str) -> None:
    """Refuse to resume a run whose record (``rollout.json``) differs from these options, naming each."""
    saved = json.loads(path.read_text())
    changed = [key for key in {**record, **saved} if saved.get(key) != record.get(key)]
    if changed:
        values = ", ".join(f"{k} {saved.get(k)!r} there, {record.get(k)!r} now" for k in changed)
        raise InputError(
            f"--resume: {', '.join(changed)} differ from {what} {path.parent} ({values}); "
            "samples would not match"
        )


def finished_counts(output: Path) -> tuple[int, int, Counter]:
    """Questions, samples and finish reasons of a finished rollout folder (its shards)."""
    table = pq.read_table(sorted(output.glob("*.parquet")), columns=["question_id", "finish_reason"])
    reasons = Counter(table.column("finish_reason").to_pylist())
    return len(pc.unique(table.column("question_id"))), table.num_rows, reasons


class PartWriter:
    """Buffers finished questions and writes them as sorted part files; flushes on exit, even on error."""

    def __init__(self, folder: Path, tag: str):
        self.folder, self.tag, self.count = folder, tag, 0
        self.buffer: list[pa.Table] = []
        self.rows, self.last = 0, time.monotonic()

    def add(self, rows: dict) -> None:
        table = pa.Table.from_pydict(rows, ROLLOUT_SCHEMA)
        self.buffer.append(table)
        self.rows += table.num_rows
        if self.rows >= FLUSH_ROWS or time.monotonic() - self.last >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        self.last = time.monotonic()
        if not self.buffer:
            return
        tables = sorted(self.buffer, key=lambda t: t.column("question_id")[0].as_py())
        path = self.folder / f"part-{self.tag}-{self.count:06d}.parquet"
        tmp = path.with_suffix(".tmp")
        with pq.ParquetWriter(tmp, ROLLOUT_SCHEMA, compression="zstd") as out:
            for table in tables:  # one row group per question: the merge holds one question per part
                out.write_table(table)
        os.replace(tmp, path)
        self.count += 1
        self.buffer, self.rows = [], 0

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, kind, error, trace) -> None:
        try:
            self.flush()  # finished questions are kept whatever stopped the run
        except OSError:
            if kind is None:
                raise


def run_token() -> str:
    """Names this run's part files apart from any other run's (a resumed run in the same second and
    process would otherwise overwrite the parts it resumes from): time and a random suffix."""
    return f"{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"


ROLLOUT_CARD = """
k samples per question from one model (see `rollout.json` for the model, its identity and the options
that decide the samples). Rows are sorted by `question_id`, then `sample_idx`. Columns: `question_id`
(the id `offcurate filter` gives the question), `question`, `sample_idx` (0..k-1), `response` (the
generated assistant turn; `<think>` restored when the chat template opened it), `finish_reason` (`stop`:
the model ended its turn; `length`: cut at `--max-new-tokens` or the engine's context),
`response_tokens`. `offcurate stats --base-rollouts` scores these against the majority answers (Figure 2).
"""
