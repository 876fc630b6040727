"""``offcurate filter``: OpenThoughts3 rows -> one row per math trajectory with a stable question id.

    offcurate filter -i data/raw -o data/math [--domain math]

Two streaming passes over the input: the first computes each kept row's question id and a digest of its
response, so that ``sample_idx`` can be ranked by content (the same for any shard order or layout); the
second writes the rows. Every dropped row is counted by reason; identical trajectories are kept (each
sample is a vote).
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow as pa

from .answers.extract import is_finished
from .io.card import write_card
from .io.errors import InputError
from .io.ids import question_id
from .io.report import StageReport, progress
from .io.shards import (
    ShardWriter,
    atomic_output,
    check_columns,
    check_output,
    is_integer,
    is_string,
    iter_batches,
    list_shards,
    open_shard,
    shard_name,
)

QUESTION_ROLES = ("human", "user")
TEACHER_ROLES = ("gpt", "assistant")


def _is_conversations(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_struct(t.value_type):
        return False
    names = {f.name: f.type for f in t.value_type}
    return all(k in names and is_string(names[k]) for k in ("from", "value"))


INPUT_COLUMNS = {
    "difficulty": ("int64 (nullable)", is_integer),
    "source": ("string", is_string),
    "domain": ("string", is_string),
    "conversations": ("list<struct<from: string, value: string>>", _is_conversations),
}
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


def split_conversation(conversations: list[dict] | None) -> tuple[str, str] | str:
    """``(question, response)``, or the reason the row cannot be used."""
    if not conversations:
        return "no_conversation"
    question = next((t for t in conversations if t.get("from") in QUESTION_ROLES), None)
    if question is None:
        return "no_question_turn"
    after = conversations[conversations.index(question) + 1 :]
    teacher = next((t for t in after if t.get("from") in TEACHER_ROLES), None)
    if teacher is None:
        return "no_teacher_turn"
    if not (question.get("value") or "").strip():
        return "empty_question"
    if not (teacher.get("value") or "").strip():
        return "empty_response"
    return question["value"], teacher["value"]


def keep_row(domain: str | None, conversations: list[dict] | None, domains: set[str]) -> tuple[bool, str]:
    """``(keep, reason)``: the datatrove habit, so every drop is counted by its reason."""
    if domain not in domains:
        return False, f"domain={domain}"
    split = split_conversation(conversations)
    if isinstance(split, str):
        return False, split
    return True, "kept"


def _kept_rows(path: Path, domains: set[str], columns: list[str]):
    """Yield (row number, row dict, question, response) of kept rows, and the reason of dropped ones."""
    row_number = 0
    for batch in iter_batches(path, columns=columns):
        for row in batch.to_pylist():
            keep, reason = keep_row(row["domain"], row["conversations"], domains)
            if keep:
                question, response = split_conversation(row["conversations"])
                yield row_number, row, question, response
            else:
                yield row_number, None, reason, None
            row_number += 1


def run_filter(
    input_dir: Path,
    output: Path,
    domains: tuple[str, ...] = ("math",),
    overwrite: bool = False,
    fmt: str = "openthoughts3",
    mapping: dict[str, str | None] | None = None,
) -> StageReport:
    """``fmt`` other than OpenThoughts3 (``mapping``: the columns of ``--format columns``) goes to that
    format's adapter (``curate/formats``); OpenThoughts3 is read here."""
    mapping = {key: column for key, column in (mapping or {}).items() if column}
    if fmt != "openthoughts3" or mapping:
        from .formats import get_format
        from .formats.stage import run_format_filter

        if tuple(domains) != ("math",):
            raise InputError(f"--domain applies to --format openthoughts3; {fmt} is all math")
        return run_format_filter(input_dir, output, get_format(fmt, mapping), overwrite)
    check_output(output, overwrite, (input_dir,))
    report = StageReport("filter", output=str(output))
    shards = list_shards(input_dir)
    total_rows = 0
    for path in shards:
        shard = open_shard(path)
        check_columns(path, shard.schema_arrow, INPUT_COLUMNS)
        total_rows += shard.metadata.num_rows
    if total_rows == 0:
        raise InputError(f"{input_dir}: the input shards hold no rows")
    wanted, columns = set(domains), list(INPUT_COLUMNS)

    # Pass 1: question ids and response digests of kept rows -> content-ranked sample_idx.
    members: dict[str, list[tuple[bytes, int, int]]] = defaultdict(list)
    dropped: Counter = Counter()
    with progress() as bar:
        task = bar.add_task("filter: index", total=total_rows)
        for shard_no, path in enumerate(shards):
            for row_no, row, question, response in _kept_rows(path, wanted, columns):
                if row is None:
                    dropped[question] += 1  # the reason
                else:
                    digest = hashlib.blake2b(response.encode(), digest_size=8).digest()
                    members[question_id(question)].append((digest, shard_no, row_no))
                bar.advance(task)
    sample_idx: dict[tuple[int, int], int] = {}
    for rows in members.values():
        for rank, (_, shard_no, row_no) in enumerate(sorted(rows)):
            sample_idx[(shard_no, row_no)] = rank

    # Pass 2: write one output shard per input shard that kept anything.
    kept = 0
    with atomic_output(output, overwrite, inputs=(input_dir,)) as tmp, progress() as bar:
        task = bar.add_task("filter: write", total=total_rows)
        written: list[Path] = []
        for shard_no, path in enumerate(shards):
            writer, buffer = None, []
            for row_no, row, question, response in _kept_rows(path, wanted, columns):
                bar.advance(task)
                if row is None:
                    continue
                buffer.append(
                    {
                        "question_id": question_id(question),
                        "sample_idx": sample_idx[(shard_no, row_no)],
                        "question": question,
                        "response": response,
                        "source": row["source"],
                        "difficulty": row["difficulty"],
                        "finished": is_finished(response),
                    }
                )
                if len(buffer) >= 512:
                    writer = writer or ShardWriter(tmp / f".part-{shard_no:05d}.parquet", OUTPUT_SCHEMA)
                    writer.write(pa.Table.from_pylist(buffer, OUTPUT_SCHEMA))
                    buffer = []
            if buffer:
                writer = writer or ShardWriter(tmp / f".part-{shard_no:05d}.parquet", OUTPUT_SCHEMA)
                writer.write(pa.Table.from_pylist(buffer, OUTPUT_SCHEMA))
            if writer:
                writer.close()
                kept += writer.rows
                written.append(writer.path)
        if not written:
            raise InputError(f"{input_dir}: no row of domain {'/'.join(domains)} could be used")
        for i, part in enumerate(written):
            part.rename(tmp / shard_name(i, len(written)))
        write_card(
            tmp,
            "Math trajectories (offcurate filter)",
            "One row per teacher trajectory. `question_id` = first 16 hex of sha256 of the whitespace-"
            "collapsed question; `sample_idx` ranks a question's samples by response content; "
            "`finished` is false for a trace cut inside `<think>`.",
            {"default": ("*.parquet", OUTPUT_SCHEMA)},
        )
    report.counts.update(
        {
            "input rows": total_rows,
            "kept trajectories": kept,
            "questions": len(members),
            "input shards": len(shards),
        }
    )
    report.dropped.update(dropped)
    return report.finish()
