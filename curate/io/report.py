"""Stage reports and terminal UI: one progress-bar style and one summary table for every stage.

Drops are counted by reason (datatrove's habit) so nothing leaves the pipeline silently. Without a
terminal (Slurm, nohup, CI logs) rich draws no bar, so every bar prints a plain line instead, at most
every $OFFCURATE_PROGRESS_SECONDS (30 s by default), as tqdm does in a log file::

    rollout: questions  120/500 (24%)  1.64 it/s  elapsed 0:01:13  ETA 0:03:52
"""

from __future__ import annotations

import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=True)
PLAIN_EVERY_S = 30.0  # default seconds between two plain progress lines of a bar (no terminal)


class Bar(Progress):
    """rich's live bar on a terminal; elsewhere one plain line per task at a steady interval (module doc).

    The line says done/total, the rate since the task started (done steps of a resumed run excluded), the
    elapsed time and the ETA, and the task's ``info`` field when it has one. The first line comes one
    interval after the start and a finished task says so once, so a task shorter than the interval
    prints nothing (a one-line error stays one line).
    """

    def __init__(self, *columns: Any, every: float | None = None, **kwargs: Any):
        super().__init__(*columns, **kwargs)
        self.plain = not self.console.is_terminal
        self.every = plain_interval() if every is None else every
        self._start: dict[TaskID, tuple[float, float]] = {}  # task -> (time, completed) when added
        self._said: dict[TaskID, float] = {}  # task -> time of its last plain line
        self._done: set[TaskID] = set()

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task_id = super().add_task(description, *args, **kwargs)
        self._start[task_id] = (time.monotonic(), float(self._tasks[task_id].completed))
        return task_id

    def update(self, task_id: TaskID, **kwargs: Any) -> None:
        super().update(task_id, **kwargs)
        self._plain_line(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._plain_line(task_id)

    def _plain_line(self, task_id: TaskID) -> None:
        if not self.plain or task_id in self._done:
            return
        task, now = self._tasks[task_id], time.monotonic()
        started, first = self._start[task_id]
        done = task.total is not None and task.completed >= task.total
        last = self._said.get(task_id)
        if done:  # the end of a task that said something (a short one stays quiet: no clutter in logs)
            if last is None and self.every > 0:
                return
        elif now - (started if last is None else last) < self.every or task.completed <= first:
            return  # not yet time, or nothing done yet (a resumed bar): no rate to show
        self._said[task_id] = now
        if done:
            self._done.add(task_id)
        line = plain_line(
            task.description, task.completed, task.total, task.completed - first, now - started,
            task.fields.get("info"),
        )  # fmt: skip
        self.console.print(line, highlight=False, markup=False, soft_wrap=True)


def plain_interval() -> float:
    """Seconds between two plain progress lines: $OFFCURATE_PROGRESS_SECONDS, else ``PLAIN_EVERY_S``."""
    try:
        return max(0.0, float(os.environ.get("OFFCURATE_PROGRESS_SECONDS", PLAIN_EVERY_S)))
    except ValueError:
        return PLAIN_EVERY_S


def plain_line(
    what: str, done: float, total: float | None, progressed: float, seconds: float, info: str | None = None
) -> str:
    """``what  done/total (pct%)  rate  elapsed  ETA  info`` (pure, for logs without a terminal)."""
    parts = [what.replace("[bold]", "")]
    if total:
        parts.append(f"{done:,.0f}/{total:,.0f} ({100 * done / total:.0f}%)")
    else:
        parts.append(f"{done:,.0f} done")
    rate = progressed / seconds if seconds > 0 and progressed > 0 else None
    if rate is not None:
        parts.append(f"{rate:.2f} it/s" if rate >= 1 else f"{1 / rate:.2f} s/it")
    parts.append(f"elapsed {_clock(seconds)}")
    if rate is not None and total:
        parts.append(f"ETA {_clock(max(0.0, total - done) / rate)}")
    if info:
        parts.append(str(info))
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def progress() -> Bar:
    """The progress bar every long loop uses (rows or files, with rate and ETA); plain lines without a TTY."""
    return Bar(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    )


@dataclass
class StageReport:
    """What a stage did: ordered counters, drops by reason, where it wrote, and how long it took."""

    stage: str
    output: str = ""
    counts: dict[str, int | float | str] = field(default_factory=dict)
    dropped: Counter = field(default_factory=Counter)
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0
    tables: list[Table] = field(default_factory=list)  # printed after the counters (e.g. per bucket)

    def finish(self) -> StageReport:
        self.seconds = time.perf_counter() - self.started
        return self

    def table(self) -> Table:
        table = Table(title=f"offcurate {self.stage}", title_justify="left", show_header=False)
        table.add_column("what", style="cyan")
        table.add_column("value", justify="right")
        for key, value in self.counts.items():
            table.add_row(key, _fmt(value))
        for reason, n in sorted(self.dropped.items()):
            table.add_row(f"dropped: {reason}", _fmt(n), style="yellow")
        table.add_row("output", self.output)
        table.add_row("time", f"{self.seconds:.1f} s")
        return table

    def print(self) -> None:
        console.print(self.table())
        for table in self.tables:
            console.print(table)


def _fmt(value: int | float | str) -> str:
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.3f}"


def frame_table(frame: pl.DataFrame, title: str) -> Table:
    """A small polars frame as a rich table (numbers right-aligned and formatted like the counters)."""
    table = Table(title=title, title_justify="left")
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*("–" if v is None else _fmt(v) for v in row))
    return table


def summary_table(reports: list[StageReport]) -> Table:
    """One line per stage for multi-stage runs: where it wrote and how long it took."""
    table = Table(title="offcurate pipeline", title_justify="left")
    for name in ("stage", "output", "time"):
        table.add_column(name)
    for report in reports:
        table.add_row(report.stage, report.output, f"{report.seconds:.1f} s")
    table.add_row("total", "", f"{sum(r.seconds for r in reports):.1f} s", style="bold")
    return table
