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
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from ..curate.io.report import StageReport, console


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


def live_view(total_steps: int, first_step: int) -> tuple[Progress, Any]:
    """A progress bar over optimizer steps with the latest loss, lr, throughput and memory beside it."""
    view = Progress(
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


def log_plain(step: int, total: int, row: dict[str, Any]) -> None:
    """Without a terminal (logs, CI) the live view draws nothing: print ~20 plain lines per run instead."""
    if not console.is_terminal and (step == 1 or step == total or step % max(1, total // 20) == 0):
        console.print(f"step {step}/{total}  {describe(row)}", highlight=False)


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


def summarise(
    report: StageReport, rows: list[dict[str, Any]], step: int, device: torch.device, out_dir: Path
) -> StageReport:
    """The end-of-run table (totals and averages over this invocation's steps), also as summary.json."""
    counts = report.counts
    counts["steps"] = step
    counts["steps this run"] = len(rows)
    if rows:
        counts["questions trained"] = sum(r["questions"] for r in rows)
        counts["trajectories trained"] = sum(r["trajectories"] for r in rows)
        counts["tokens"] = sum(r["tokens"] for r in rows)
        counts["loss first step"] = rows[0]["loss"]
        counts["loss last step"] = rows[-1]["loss"]
        counts["all-positive fraction"] = sum(r["all_positive_fraction"] for r in rows) / len(rows)
        counts["tokens/s"] = counts["tokens"] / sum(r["step_seconds"] for r in rows)
        mfus = [r["mfu"] for r in rows if r["mfu"] is not None]
        if mfus:
            counts["MFU"] = sum(mfus) / len(mfus)
        counts["peak memory GiB"] = max(r["peak_memory_gib"] for r in rows)
    counts["device"] = str(device)
    report.finish()
    summary = {"counts": counts, "dropped": dict(report.dropped), "seconds": report.seconds}
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return report
