"""Sampled responses ("rollout format") read as answers, and scored in the verify pool.

Shared by ``offcurate stats --base-rollouts`` (base model vs the teacher's majority) and ``offcurate eval``
(a model vs a benchmark's gold). The K slice folders of ``rollout --num-shards K`` (or ``eval --model
--num-shards K``) under one parent are read together, once their ``rollout.json`` records show one run:
the same model and options, every slice present once, none unfinished. A rollout folder holds Parquet
shards with ``response`` and
``question_id`` (or ``question``, from which the id is computed), optionally ``sample_idx``; other columns
(``benchmark``, ``finish_reason``, ...) are ignored. Only the answer of each response is kept, extracted
shard by shard, so the text never sits in memory all at once::

    answers = read_rollout_answers(Path("runs/rollouts"))   # question_id, sample_idx, answer, finished,
                                                            # finish_reason (null without that column)
    scores = run_jobs(ScoreAgainstGold(), tasks, total, workers=2, timeout=2.0, description="score")
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import polars as pl

from ..curate.answers.equivalence import Job
from ..curate.answers.extract import extract_batch
from ..curate.answers.pool import Task, VerifyPool
from ..curate.io.errors import InputError
from ..curate.io.ids import question_id
from ..curate.io.report import progress
from ..curate.io.shards import (
    check_columns,
    is_integer,
    is_string,
    list_shards,
    open_shard,
    read_table,
    reject_nulls,
)


def read_rollout_answers(folder: Path, description: str = "read responses") -> pl.DataFrame:
    """One row per response: ``question_id``, ``sample_idx``, ``answer`` (None: no answer), ``finished``
    and ``finish_reason`` (the generator's "stop" or "length"; null in shards without that column).

    Rows are sorted by question and sample index, so "first appearance" (the vote's tie-break) means
    the lowest ``sample_idx``. Without a ``sample_idx`` column the order of the rows in the shards counts.
    """
    shards = [
        shard
        for part in rollout_folders(Path(folder))
        for shard in list_shards(part)
        if not any(name.startswith(".") for name in shard.relative_to(part).parts[:-1])  # a .NAME.partial
    ]
    if not shards:
        raise InputError(f"{folder}: no finished rollout here (only hidden, unfinished parts)")
    frames, offset = [], 0
    with progress() as bar:
        task = bar.add_task(description, total=len(shards))
        for path in shards:
            frames.append(_read_shard(path, offset))
            offset += frames[-1].height
            bar.advance(task)
    answers = pl.concat(frames)
    if answers.height == 0:
        raise InputError(f"{folder}: the response shards hold no rows")
    dupes = answers.group_by("question_id", "sample_idx").len().filter(pl.col("len") > 1)
    if dupes.height:
        qid, idx = dupes.sort("question_id", "sample_idx").row(0)[:2]
        raise InputError(
            f"{folder}: question_id {qid} has sample_idx {idx} more than once ({dupes.height} duplicated "
            "pairs); each copy would be scored as another sample"
        )
    return answers.sort("question_id", "sample_idx", maintain_order=True)


def rollout_folders(folder: Path) -> list[Path]:
    """``folder`` itself, or the slice folders under it after checking they are the K slices of one run.

    A folder that is no rollout output, or holds no slice records, is read as it is (any shards with the
    rollout columns); hidden folders (an unfinished ``.NAME.partial``) are never read."""
    if not folder.is_dir() or (folder / "rollout.json").is_file():
        return [folder]
    records = {}
    for record in sorted(r for r in folder.glob("*/rollout.json") if not r.parent.name.startswith(".")):
        try:
            records[record.parent] = json.loads(record.read_text())
        except (OSError, ValueError) as err:
            raise InputError(f"{record}: not a readable rollout record ({err})") from None
    if not records:
        return [folder]
    check_slices(folder, records)
    return list(records)


def check_slices(parent: Path, records: dict[Path, dict]) -> None:
    """The records under ``parent`` are the K slices of one run: same options, each slice once, all there."""
    first_path, first = next(iter(records.items()))
    apart = {"shard_index", "questions"}
    for path, record in records.items():
        changed = sorted(k for k in {**first, **record} if k not in apart and first.get(k) != record.get(k))
        if changed:
            name = changed[0]
            raise InputError(
                f"{parent}: {path.name} and {first_path.name} are not slices of one run "
                f"({', '.join(changed)} differ: {name} {record.get(name)!r} vs {first.get(name)!r})"
            )
    shards = first.get("num_shards", 1)
    seen: dict[int, Path] = {}
    for path, record in records.items():
        index = record.get("shard_index", 0)
        if index in seen:
            raise InputError(
                f"{parent}: {seen[index].name} and {path.name} are both slice {index} of {shards}"
            )
        seen[index] = path
    missing = sorted(set(range(shards)) - set(seen))
    if missing:
        unfinished = sorted(p.name for p in parent.glob(".*.partial"))
        hint = f" (unfinished here: {', '.join(unfinished)}; finish them with --resume)" if unfinished else ""
        raise InputError(
            f"{parent}: slice{'s' if len(missing) > 1 else ''} {', '.join(map(str, missing))} of {shards} "
            f"missing{hint}; a figure or score on part of the questions would pass for the whole"
        )


def _read_shard(path: Path, offset: int) -> pl.DataFrame:
    schema = open_shard(path).schema_arrow
    names = set(schema.names)
    if "response" not in names or not names & {"question_id", "question"}:
        raise InputError(f"{path}: responses need columns 'response' and 'question_id' or 'question'")
    required = {"response": ("string", is_string)}
    key = "question_id" if "question_id" in names else "question"
    required[key] = ("string", is_string)
    if "sample_idx" in names:
        required["sample_idx"] = ("int64", is_integer)
    if "finish_reason" in names:
        required["finish_reason"] = ("string", is_string)
    check_columns(path, schema, required)
    table = read_table(path, columns=list(required))
    reject_nulls(path, table, [key])
    answers, finished = extract_batch(table.column("response"))
    frame = pl.from_arrow(table.drop_columns(["response"]))
    if "finish_reason" not in names:
        frame = frame.with_columns(pl.lit(None, pl.String).alias("finish_reason"))
    if key == "question":
        frame = frame.with_columns(
            pl.col("question").map_elements(question_id, pl.String).alias("question_id")
        )
    if "sample_idx" not in names:
        frame = frame.with_columns(
            pl.int_range(offset, offset + frame.height, dtype=pl.Int64).alias("sample_idx")
        )
    return frame.select(
        "question_id",
        pl.col("sample_idx").cast(pl.Int64),
        pl.Series("answer", answers, dtype=pl.String),
        pl.Series("finished", finished, dtype=pl.Boolean),
        pl.col("finish_reason").cast(pl.String),
    )


def run_jobs(
    job: Job, tasks: Iterable[Task], total: int, workers: int, timeout: float | None, description: str
) -> tuple[list, int]:
    """Results of ``job`` on every task, in task order, and the number of workers the watchdog killed."""
    results: list = [None] * total
    with VerifyPool(job, workers, timeout) as pool, progress() as bar:
        task = bar.add_task(description, total=total)
        for index, result in pool.map(tasks):
            results[index] = result
            bar.advance(task)
    return results, pool.hard_timeouts
