"""``offcurate filter``: raw teacher traces -> one row per math trajectory with a stable question id.

    offcurate filter -i data/raw -o data/math [--domain math] [--workers 2]
    offcurate filter --format openr1-math -i data/openr1 -o data/openr1-math     # + gold, dataset_verdict

Each raw shard is read once, by one of ``--workers`` threads (default: one per core): its
usable rows are written at once, without ``sample_idx`` (``filter_shard.index_shard``), and each kept
row's question id and response digest come back. ``sample_idx`` ranks a question's samples by response
content, so it is the same for any shard order or layout; once every shard is read, the ranks are
spliced into each shard without decoding its text again (``filter_shard.finish_shard``). The output is,
byte for byte, what writing every row at once would give, for any number of workers
(tests/test_filter_identity.py). Every dropped row is counted by reason; identical trajectories are kept
(each sample is a vote).

The raw layout is read by one reader (``filter_shard.Reader``: record batch -> question, response,
source, difficulty of the usable trajectories, plus the layout's extra columns such as ``gold``, and a
drop reason per row or trace): ``filter_ot3.OpenThoughts3`` (the default) or a ``--format`` of
``curate/formats`` (lists of traces exploded to one row each); nothing else here knows the layout, so
every layout gets the same one-read, parallel path. Memory: one record batch and one row group per
worker, and 16 bytes a kept row for the ranking (see ``rank_samples``; 17 with a gold); nothing holds the
text of more than a row group.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from .filter_ot3 import INPUT_COLUMNS as INPUT_COLUMNS
from .filter_ot3 import keep_row as keep_row
from .filter_ot3 import split_conversation as split_conversation
from .filter_shard import OUTPUT_SCHEMA as OUTPUT_SCHEMA
from .filter_shard import Reader, ShardIndex, finish_shard, index_shard, output_schema, rank_samples
from .formats import OPENTHOUGHTS3, reader
from .io.card import write_card
from .io.errors import InputError
from .io.report import StageReport, progress
from .io.shards import atomic_output, check_output, list_shards, open_shard, shard_name


def _each_shard(what: str, pool: Executor | None, tasks: dict[int, tuple], rows: list[int], fn, stop) -> dict:
    """``fn(*tasks[n])`` for every shard ``n`` (in ``pool``'s threads, or here when it is None), with a
    progress bar counted in input rows. On the first failure (or Ctrl-C) ``stop`` is set, so the other
    threads give up at their next record batch, and the tasks not started are cancelled."""
    done = {}
    with progress() as bar:
        task = bar.add_task(what, total=sum(rows[n] for n in tasks))
        if pool is None:
            for n, args in tasks.items():
                done[n] = fn(*args)
                bar.advance(task, rows[n])
            return done
        futures = {pool.submit(fn, *args): n for n, args in tasks.items()}
        try:
            for future in as_completed(futures):
                done[futures[future]] = future.result()
                bar.advance(task, rows[futures[future]])
        except BaseException:
            stop.set()
            for future in futures:
                future.cancel()
            raise
    return done


def run_filter(
    input_dir: Path,
    output: Path,
    domains: tuple[str, ...] = ("math",),
    overwrite: bool = False,
    workers: int | None = None,
    raw: Reader | None = None,
    fmt: str = OPENTHOUGHTS3,
    mapping: dict[str, str | None] | None = None,
) -> StageReport:
    """Filter ``input_dir`` into ``output`` (module doc). ``raw``: the layout's reader; by default the one
    of ``--format fmt`` (``mapping``: the columns of ``--format columns``), OpenThoughts3 keeping
    ``domains``."""
    raw = raw or reader(fmt, mapping, domains)
    check_output(output, overwrite, (input_dir,))
    report = StageReport("filter", output=str(output))
    shards = list_shards(input_dir)
    rows, columns = [], []
    for path in shards:
        shard = open_shard(path)
        columns.append(raw.check(path, shard.schema_arrow))
        rows.append(shard.metadata.num_rows)
    if sum(rows) == 0:
        raise InputError(f"{input_dir}: the input shards hold no rows")
    schema = output_schema(raw.extra)

    workers = min(workers or os.cpu_count() or 1, len(shards))
    # Threads, not processes: every costly step (Parquet decoding and encoding, copying, hashing the
    # responses) runs in C with the GIL released, and a thread costs no start-up (a spawned process: ~0.5 s
    # of CPU importing pyarrow) and ends with the command, whatever stops it.
    threads = ThreadPoolExecutor(workers, thread_name_prefix="filter") if workers > 1 else None
    stop = threading.Event()
    with atomic_output(output, overwrite, inputs=(input_dir,)) as tmp, threads or contextlib.nullcontext():
        text = {n: tmp / f".text-{n:05d}.parquet" for n in range(len(shards))}
        tasks = {n: (path, raw, columns[n], text[n], stop) for n, path in enumerate(shards)}
        indexes = _each_shard("filter: read + write", threads, tasks, rows, index_shard, stop)
        indexes = [indexes[n] for n in range(len(shards))]
        if sum(index.kept for index in indexes) == 0:
            raise InputError(f"{input_dir}: {raw.nothing_kept()}")
        ranks, questions = rank_samples(indexes)
        kept = [n for n, index in enumerate(indexes) if index.kept]
        parts = {n: tmp / f".part-{n:05d}.parquet" for n in kept}
        tasks = {n: (text[n], ranks[n], parts[n], schema) for n in kept}
        _each_shard("filter: add sample_idx", threads, tasks, rows, finish_shard, stop)
        for i, n in enumerate(kept):
            parts[n].rename(tmp / shard_name(i, len(kept)))
        title, card = raw.card()
        write_card(tmp, title, card, {"default": ("*.parquet", schema)})
    report.counts.update(
        {
            **({"format": raw.name} if raw.name != OPENTHOUGHTS3 else {}),
            "input rows": sum(rows),
            "kept trajectories": sum(index.kept for index in indexes),
            "questions": questions,
            **({"questions with a gold": _with_gold(indexes)} if "gold" in schema.names else {}),
            "input shards": len(shards),
        }
    )
    report.counts.update(sum((index.notes for index in indexes), Counter()))
    report.dropped.update(sum((index.dropped for index in indexes), Counter()))
    return report.finish()


def _with_gold(indexes: list[ShardIndex]) -> int:
    """Questions with a gold on at least one of their trajectories."""
    ids = [i.question_ids[i.golds] for i in indexes if i.golds is not None]
    return len(np.unique(np.concatenate(ids))) if ids else 0
