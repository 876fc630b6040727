"""Stage reports and terminal UI: one progress-bar style and one summary table for every stage.

Drops are counted by reason (datatrove's habit) so nothing leaves the pipeline silently.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import polars as pl
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console(stderr=True)


def progress() -> Progress:
    """The progress bar every long loop uses (rows or files, with rate and ETA); quiet when not a TTY."""
    return Progress(
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
