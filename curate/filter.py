"""``offcurate filter``: OpenThoughts3 rows -> one row per math trajectory with a stable question id.

    offcurate filter -i data/raw -o data/math [--domain math] [--workers 2]

Each raw shard is read once, by one of ``--workers`` threads (default: one per core): its
usable rows are written at once, without ``sample_idx`` (``filter_shard.index_shard``), and each kept
row's question id and response digest come back. ``sample_idx`` ranks a question's samples by response
content, so it is the same for any shard order or layout; once every shard is read, the ranks are
spliced into each shard without decoding its text again (``filter_shard.finish_shard``). The output is,
byte for byte, what writing every row at once would give, for any number of workers
(tests/test_filter_identity.py). Every dropped row is counted by reason; identical trajectories are kept
(each sample is a vote).

The raw layout is read by one reader (``filter_ot3.OpenThoughts3``: record batch -> question, response,
source, difficulty of the usable rows + a drop reason per row); nothing else here knows the layout.
Memory: one record batch and one row group per worker, and 16 bytes a kept row for the ranking (see
``rank_samples``); nothing holds the text of more than a row group.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import Counter
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from pathlib import Path

from .filter_ot3 import INPUT_COLUMNS as INPUT_COLUMNS
from .filter_ot3 import OpenThoughts3
from .filter_ot3 import keep_row as keep_row
from .filter_ot3 import split_conversation as split_conversation
from .filter_shard import OUTPUT_SCHEMA as OUTPUT_SCHEMA
from .filter_shard import finish_shard, index_shard, rank_samples
from .io.card import write_card
from .io.errors import InputError
from .io.report import StageReport, progress
from .io.shards import atomic_output, check_columns, check_output, list_shards, open_shard, shard_name


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
    raw=None,
    fmt: str = "openthoughts3",
    mapping: dict[str, str | None] | None = None,
) -> StageReport:
    """Filter ``input_dir`` into ``output`` (module doc); ``raw``: the layout's reader (default:
    OpenThoughts3 keeping ``domains``). ``fmt`` other than OpenThoughts3 (``mapping``: the columns of
    ``--format columns``) goes to that format's adapter (``curate/formats``)."""
    mapping = {key: column for key, column in (mapping or {}).items() if column}
    if fmt != "openthoughts3" or mapping:
        from .formats import get_format
        from .formats.stage import run_format_filter

        if tuple(domains) != ("math",):
            raise InputError(f"--domain applies to --format openthoughts3; {fmt} is all math")
        return run_format_filter(input_dir, output, get_format(fmt, mapping), overwrite)
    check_output(output, overwrite, (input_dir,))
    raw = raw or OpenThoughts3(frozenset(domains))
    report = StageReport("filter", output=str(output))
    shards = list_shards(input_dir)
    rows = []
    for path in shards:
        shard = open_shard(path)
        check_columns(path, shard.schema_arrow, raw.columns)
        rows.append(shard.metadata.num_rows)
    if sum(rows) == 0:
        raise InputError(f"{input_dir}: the input shards hold no rows")

    workers = min(workers or os.cpu_count() or 1, len(shards))
    # Threads, not processes: every costly step (Parquet decoding and encoding, copying, hashing the
    # responses) runs in C with the GIL released, and a thread costs no start-up (a spawned process: ~0.5 s
    # of CPU importing pyarrow) and ends with the command, whatever stops it.
    threads = ThreadPoolExecutor(workers, thread_name_prefix="filter") if workers > 1 else None
    stop = threading.Event()
    with atomic_output(output, overwrite, inputs=(input_dir,)) as tmp, threads or contextlib.nullcontext():
        text = {n: tmp / f".text-{n:05d}.parquet" for n in range(len(shards))}
        tasks = {n: (path, raw, text[n], stop) for n, path in enumerate(shards)}
        indexes = _each_shard("filter: read + write", threads, tasks, rows, index_shard, stop)
        indexes = [indexes[n] for n in range(len(shards))]
        if sum(index.kept for index in indexes) == 0:
            raise InputError(f"{input_dir}: no row of domain {'/'.join(domains)} could be used")
        ranks, questions = rank_samples(indexes)
        kept = [n for n, index in enumerate(indexes) if index.kept]
        parts = {n: tmp / f".part-{n:05d}.parquet" for n in kept}
        tasks = {n: (text[n], ranks[n], parts[n]) for n in kept}
        _each_shard("filter: add sample_idx", threads, tasks, rows, finish_shard, stop)
        for i, n in enumerate(kept):
            parts[n].rename(tmp / shard_name(i, len(kept)))
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
            "input rows": sum(rows),
            "kept trajectories": sum(index.kept for index in indexes),
            "questions": questions,
            "input shards": len(shards),
        }
    )
    report.dropped.update(sum((index.dropped for index in indexes), Counter()))
    return report.finish()
