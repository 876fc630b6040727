"""``offcurate eval --compare``: per-benchmark deltas between two eval outputs, and a radar chart.

    offcurate eval --compare runs/eval-base runs/eval-grpo -o runs/compare

Reads ``summary.parquet`` of both folders (base first, then trained), joins them on the benchmark name
and writes ``compare.parquet``/``compare.json`` (pass@1 and maj@k of each, trained minus base) and
``radar.png`` (one axis per benchmark, one polygon per folder; grouped bars below three benchmarks,
where a radar is a dot or a line). Benchmarks present in only one folder
are listed in the report, never dropped silently; a k that differs between the two is flagged, since
maj@k depends on k.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich.table import Table

from ..curate.io.card import write_card
from ..curate.io.errors import InputError
from ..curate.io.report import StageReport, console
from ..curate.io.shards import (
    atomic_output,
    check_columns,
    check_output,
    is_float,
    is_integer,
    is_string,
    read_table,
)

SUMMARY_COLUMNS = {
    "benchmark": ("string", is_string),
    "k": ("int64", is_integer),
    "pass_at_1": ("float64", is_float),
    "maj_at_k": ("float64", is_float),
}
METRICS = ("pass_at_1", "maj_at_k")


def read_summary(folder: Path) -> pl.DataFrame:
    """``benchmark, k, pass_at_1, maj_at_k`` of an ``offcurate eval`` output folder."""
    path = Path(folder) / "summary.parquet"
    if not Path(folder).exists():
        raise InputError(f"{folder}: no such file or folder")
    if not path.exists():
        raise InputError(f"{folder}: no summary.parquet inside (is this an `offcurate eval` output?)")
    table = read_table(path)
    check_columns(path, table.schema, SUMMARY_COLUMNS)
    return pl.from_arrow(table).select(*SUMMARY_COLUMNS)


def deltas(base: pl.DataFrame, trained: pl.DataFrame) -> pl.DataFrame:
    """Benchmarks of both summaries (in base's order): each metric for base and trained, and the delta."""
    joined = (
        base.with_row_index("_order")
        .join(trained, on="benchmark", how="inner", suffix="_trained")
        .sort("_order")
        .rename({m: f"{m}_base" for m in (*METRICS, "k")})
    )
    return joined.select(
        "benchmark",
        pl.col("k_base"),
        pl.col("k_trained"),
        *[
            expr
            for m in METRICS
            for expr in (
                pl.col(f"{m}_base"),
                pl.col(f"{m}_trained"),
                (pl.col(f"{m}_trained") - pl.col(f"{m}_base")).alias(f"{m}_delta"),
            )
        ],
    )


@dataclass
class Comparison:
    """What ``compare`` returns: the delta table (as written) and the stage report."""

    table: pl.DataFrame
    labels: tuple[str, str]
    report: StageReport

    def print(self) -> None:
        console.print(delta_table(self.table, self.labels))
        self.report.print()


def delta_table(table: pl.DataFrame, labels: tuple[str, str]) -> Table:
    """Scores in percent, deltas in points (green up, red down); a k mismatch is shown in yellow."""
    out = Table(title=f"offcurate eval --compare: {labels[1]} vs {labels[0]}", title_justify="left")
    out.add_column("benchmark")
    out.add_column("k", justify="right")
    for metric in ("pass@1", "maj@k"):
        for what in (labels[0], labels[1], "delta"):
            out.add_column(f"{metric} {what}", justify="right")
    for row in table.iter_rows(named=True):
        same_k = row["k_base"] == row["k_trained"]
        cells = [row["benchmark"], str(row["k_base"]) if same_k else f"{row['k_base']} vs {row['k_trained']}"]
        for m in METRICS:
            cells += [_pct(row[f"{m}_base"]), _pct(row[f"{m}_trained"]), _delta(row[f"{m}_delta"])]
        out.add_row(*cells, style=None if same_k else "yellow")
    return out


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _delta(value: float | None) -> str:
    if value is None:
        return "-"
    color = "green" if value > 0 else "red" if value < 0 else "white"
    return f"[{color}]{100 * value:+.1f}[/]"


def compare(base: Path, trained: Path, output: Path, overwrite: bool = False) -> Comparison:
    """Deltas trained - base per benchmark, written to ``output`` with the radar chart."""
    from ..curate.figures import compare_chart

    check_output(output, overwrite, (base, trained))
    report = StageReport("eval --compare", output=str(output))
    base_summary, trained_summary = read_summary(base), read_summary(trained)
    table = deltas(base_summary, trained_summary)
    if table.height == 0:
        raise InputError(f"{trained}: no benchmark in common with {base}")
    labels = (Path(base).name, Path(trained).name)
    if labels[0] == labels[1]:
        labels = ("base", "trained")
    with atomic_output(output, overwrite, inputs=(base, trained)) as tmp:
        table.write_parquet(tmp / "compare.parquet")
        meta = {"base": str(base), "trained": str(trained), "benchmarks": table.to_dicts()}
        (tmp / "compare.json").write_text(json.dumps(meta, indent=2) + "\n")
        chart = compare_chart(table, labels, tmp / "radar.png")
        write_card(
            tmp,
            "Base vs trained (offcurate eval --compare)",
            COMPARE_CARD,
            {"compare": ("compare.parquet", table.to_arrow().schema)},
        )
    report.counts.update(
        {
            "benchmarks compared": table.height,
            "radar.png": "radar" if chart == "radar" else "bars (a radar needs 3 benchmarks)",
            "mean pass@1 delta (points)": 100 * float(table["pass_at_1_delta"].mean() or 0.0),
            "mean maj@k delta (points)": 100 * float(table["maj_at_k_delta"].mean() or 0.0),
        }
    )
    for name, summary, other in ((labels[0], base_summary, trained), (labels[1], trained_summary, base)):
        alone = sorted(set(summary["benchmark"]) - set(table["benchmark"]))
        if alone:
            report.dropped[f"only in {name} (not in {other})"] = len(alone)
            report.counts[f"only in {name}"] = ", ".join(alone)
    return Comparison(table, labels, report.finish())


COMPARE_CARD = """
`compare.parquet` / `compare.json`: per benchmark present in both eval outputs, k, pass@1 and maj@k of the
base and the trained model and the delta (trained minus base, as fractions). `radar.png`: pass@1 (left)
and maj@k (right), one axis per benchmark and one polygon per model (grouped bars below three benchmarks).
"""
