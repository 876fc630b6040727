"""What a training run reports: metrics.jsonl (one row per step), a live rich view, MFU and peak memory.

    tail -f RUN/metrics.jsonl | jq .loss

A row: step, epoch, loss (the exact step loss), mean_advantage (over every trace of the step's questions,
bias included), all_positive_fraction, grad_norm (before clipping), lr, questions, trajectories (run
through the model), micro_batches (packed rows, all ranks together, no padding rows), tokens (prompt +
response) and loss_tokens, mean_token_prob (mean π of response tokens), kl (k3, only with --beta),
dropped_long, step_seconds, tokens_per_s, mfu, peak_memory_gib. Under torchrun rank 0 writes the rows;
sums are over every rank, timings and memory are rank 0's.

MFU and peak memory are measured by ``mfu`` (model FLOPs over the measured bf16 matmul peak).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from ..curate.io.report import Bar, StageReport, console
from .config import write_json_atomic


class MetricsLog:
    """Appends one JSON object per step; on resume, rows past the resumed step are dropped first."""

    def __init__(self, path: Path, resume_step: int | None = None):
        self.path = path
        if resume_step is not None and path.exists():
            kept = [line for line in path.read_text().splitlines() if _step_of(line) <= resume_step]
            path.write_text("".join(line + "\n" for line in kept))
        elif resume_step is None:
            path.write_text("")

    def write(self, row: dict[str, Any]) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps(row, allow_nan=True) + "\n")


def _step_of(line: str) -> int:
    try:
        return int(json.loads(line).get("step", 0))
    except (ValueError, AttributeError):
        return 1 << 62


def live_view(total_steps: int, first_step: int) -> tuple[Bar, Any]:
    """A progress bar over the run's optimizer steps (all of them: a --stop-after or resumed invocation
    shows where it is in the whole run) with the latest loss, lr, throughput and memory beside it; without
    a terminal, a plain line at a steady interval (``report.Bar``)."""
    view = Bar(
        TextColumn("[bold]train"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
        console=console,
        transient=True,
    )
    task = view.add_task("train", total=total_steps, completed=first_step, info="")
    return view, task


def describe(row: dict[str, Any]) -> str:
    """One short line of the step's key numbers for the live view."""
    mfu = row.get("mfu")
    parts = [
        f"loss {row['loss']:+.4f}",
        f"A̅ {row['mean_advantage']:+.3f}",
        f"lr {row['lr']:.2e}",
        f"|g| {row['grad_norm']:.3f}",
        f"{row['tokens_per_s']:,.0f} tok/s",
        f"mem {row['peak_memory_gib']:.1f} GiB",
    ]
    if mfu is not None:
        parts.append(f"MFU {100 * mfu:.1f}%")
    return "  ".join(parts)


def read_rows(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    """The rows of metrics.jsonl up to ``up_to_step`` (a line a full disk cut short is skipped)."""
    rows = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return rows
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), int) and row["step"] <= up_to_step:
            rows.append(row)
    return rows


def summarise(
    report: StageReport,
    rows: list[dict[str, Any]],
    this_run: int,
    step: int,
    total: int,
    finished: bool,
    device: torch.device | str,
    out_dir: Path,
) -> StageReport:
    """The end-of-run table, also as RUN/summary.json (written whole): totals and averages over every
    step of the run (``rows``: a resumed run's earlier invocations too), the steps of this invocation
    (``this_run``), and whether the run is finished or stopped early (--stop-after: no final/ yet)."""
    counts = report.counts
    counts["steps"] = step
    counts["steps this run"] = this_run
    if not finished:
        counts["stopped early"] = f"at step {step} of {total}: continue with --resume (no final/ yet)"
    if rows:
        counts["questions trained"] = sum(r["questions"] for r in rows)
        counts["trajectories trained"] = sum(r["trajectories"] for r in rows)
        counts["tokens"] = sum(r["tokens"] for r in rows)
        counts["loss first step"] = rows[0]["loss"]
        counts["loss last step"] = rows[-1]["loss"]
        counts["all-positive fraction"] = sum(r["all_positive_fraction"] for r in rows) / len(rows)
        counts["tokens/s"] = counts["tokens"] / max(1e-9, sum(r["step_seconds"] for r in rows))
        mfus = [r["mfu"] for r in rows if r.get("mfu") is not None]
        if mfus:
            counts["MFU"] = sum(mfus) / len(mfus)
        counts["peak memory GiB"] = max(r["peak_memory_gib"] for r in rows)
    counts["device"] = str(device)
    report.finish()
    summary = {
        "finished": finished,
        "steps": step,
        "total_steps": total,
        "counts": counts,
        "dropped": dict(report.dropped),
        "seconds": report.seconds,
    }
    write_json_atomic(out_dir / "summary.json", summary)
    return report
