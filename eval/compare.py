"""``offcurate eval --compare``: the base model and any number of trained ones, per benchmark, and a radar.

    offcurate eval --compare runs/eval-base runs/eval-grpo -o runs/compare
    offcurate eval --compare runs/eval-base runs/eval-bias runs/eval-no-bias runs/eval-sft -o runs/compare

Reads ``summary.parquet`` of every folder (the first is the base; each is labeled by its folder name) and
writes ``compare.parquet``/``compare.json``: one row per benchmark and model with k, pass@1 and its 95%
interval over problems, maj@k, problems, samples, the chain checks (share of samples that ended their turn,
share with an answer the extractor reads) and the deltas against the base. ``radar.png`` draws one axis
per benchmark and one polygon per model (grouped bars below three benchmarks). Only benchmarks present in
every folder are compared; the others are listed in the report, never dropped silently. A k that differs
between models is flagged, since maj@k depends on k. Summaries written before the interval and chain-check
columns existed compare too (those cells stay empty).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from rich import box
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
# read when present (eval summaries before these columns existed still compare)
OPTIONAL_COLUMNS = {
    "pass_at_1_ci95": pl.Float64,
    "scored": pl.Int64,
    "samples": pl.Int64,
    "end_of_turn": pl.Float64,
    "answered": pl.Float64,
}
METRICS = ("pass_at_1", "maj_at_k")


def read_summary(folder: Path) -> pl.DataFrame:
    """``benchmark, k, pass_at_1, maj_at_k`` (+ the optional columns, null when absent) of an eval output."""
    path = Path(folder) / "summary.parquet"
    if not Path(folder).exists():
        raise InputError(f"{folder}: no such file or folder")
    if not path.exists():
        raise InputError(f"{folder}: no summary.parquet inside (is this an `offcurate eval` output?)")
    table = read_table(path)
    check_columns(path, table.schema, SUMMARY_COLUMNS)
    frame = pl.from_arrow(table)
    extra = [
        pl.col(name).cast(dtype) if name in frame.columns else pl.lit(None, dtype).alias(name)
        for name, dtype in OPTIONAL_COLUMNS.items()
    ]
    return frame.select(*SUMMARY_COLUMNS, *extra)


def labels_of(folders: Sequence[Path]) -> list[str]:
    """Each folder's name; where two share a name, ``parent/name``; else numbered."""
    names = [Path(f).name for f in folders]
    if len(set(names)) < len(names):
        names = [f"{Path(f).parent.name}/{Path(f).name}" for f in folders]
    if len(set(names)) < len(names):
        names = [f"{i}:{Path(f).name}" for i, f in enumerate(folders)]
    return names


def long_table(summaries: Sequence[pl.DataFrame], labels: Sequence[str]) -> pl.DataFrame:
    """One row per (benchmark, model) for the benchmarks of every summary, in the base's order, models in
    the order given; deltas are against the first (null on its own rows)."""
    common = set(summaries[0]["benchmark"])
    for summary in summaries[1:]:
        common &= set(summary["benchmark"])
    order = [b for b in summaries[0]["benchmark"].to_list() if b in common]
    rows = pl.concat(
        [
            s.filter(pl.col("benchmark").is_in(order)).select(pl.lit(label).alias("model"), pl.all())
            for label, s in zip(labels, summaries)
        ]
    )
    base = rows.filter(pl.col("model") == labels[0]).select(
        "benchmark", *[pl.col(m).alias(f"_{m}_base") for m in METRICS]
    )
    rank = pl.DataFrame({"benchmark": order, "_b": range(len(order))})
    models = pl.DataFrame({"model": list(labels), "_m": range(len(labels))})
    return (
        rows.join(base, on="benchmark")
        .join(rank, on="benchmark")
        .join(models, on="model")
        .sort("_b", "_m")
        .select(
            "benchmark",
            "model",
            "k",
            "pass_at_1",
            "pass_at_1_ci95",
            "maj_at_k",
            pl.col("scored").alias("problems"),
            "samples",
            "end_of_turn",
            "answered",
            *[
                pl.when(pl.col("model") != labels[0])
                .then(pl.col(m) - pl.col(f"_{m}_base"))
                .alias(f"{m}_delta")
                for m in METRICS
            ],
        )
    )


@dataclass
class Comparison:
    """What ``compare`` returns: the table (as written) and the stage report."""

    table: pl.DataFrame
    labels: list[str]
    report: StageReport

    def print(self) -> None:
        for table in comparison_tables(self.table):
            console.print(table)
        self.report.print()


def comparison_tables(table: pl.DataFrame) -> list[Table]:
    """One terminal table per benchmark: a row per model; pass@1 and the half-width of its 95% interval,
    deltas in points (green up, red down) against the first model. k is in the title, or a column
    (yellow where it differs from the first model's) when the models were sampled with different k."""
    out = []
    for (benchmark,), rows in table.group_by("benchmark", maintain_order=True):
        same_k = rows["k"].n_unique() == 1
        title = (
            f"{benchmark} (k = {rows['k'][0]})" if same_k else f"{benchmark} (k differs: maj@k depends on it)"
        )
        tbl = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False, caption=CAPTION,
                    caption_justify="left", padding=(0, 0, 0, 1))  # fmt: skip
        tbl.add_column("model")
        heads = ("pass@1", "± 95%", "Δ", "maj@k", "Δ ", "problems", "samples", "ended", "answered")
        for name in ("k", *heads) if not same_k else heads:
            tbl.add_column(name, justify="right", min_width=5 if name in ("Δ", "Δ ") else len(name))
        first_k = rows["k"][0]
        for row in rows.iter_rows(named=True):
            cells = [
                _pct(row["pass_at_1"]), _pct(row["pass_at_1_ci95"]), _delta(row["pass_at_1_delta"]),
                _pct(row["maj_at_k"]), _delta(row["maj_at_k_delta"]), _int(row["problems"]),
                _int(row["samples"]), _pct(row["end_of_turn"]), _pct(row["answered"]),
            ]  # fmt: skip
            k = [] if same_k else [str(row["k"])]
            tbl.add_row(row["model"], *k, *cells, style=None if row["k"] == first_k else "yellow")
        out.append(tbl)
    return out


CAPTION = (
    "pass@1, maj@k: % of problems; ± 95%: half-width of pass@1's interval over problems; Δ: points against "
    "the first model; ended: % of samples that ended their turn (not cut at the token limit); answered: % "
    "with an answer the extractor reads."
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _delta(value: float | None) -> str:
    if value is None:
        return ""
    color = "green" if value > 0 else "red" if value < 0 else "white"
    return f"[{color}]{100 * value:+.1f}[/]"


def read_comparison(folder: Path) -> pl.DataFrame:
    """The table ``compare`` wrote into ``folder``."""
    return pl.read_parquet(Path(folder) / "compare.parquet")


def compare(folders: Sequence[Path], output: Path, overwrite: bool = False) -> Comparison:
    """Every model against the first (the base) per benchmark, written to ``output`` with the radar."""
    from ..curate.figures import compare_chart

    folders = [Path(f) for f in folders]
    if len(folders) < 2:
        raise InputError("--compare takes two or more eval output folders (the base first)")
    check_output(output, overwrite, folders)
    report = StageReport("eval --compare", output=str(output))
    summaries = [read_summary(f) for f in folders]
    labels = labels_of(folders)
    table = long_table(summaries, labels)
    if table.height == 0:
        raise InputError(f"{', '.join(map(str, folders[1:]))}: no benchmark in common with {folders[0]}")
    with atomic_output(output, overwrite, inputs=folders) as tmp:
        table.write_parquet(tmp / "compare.parquet")
        meta = {"folders": [str(f) for f in folders], "labels": labels, "rows": table.to_dicts()}
        (tmp / "compare.json").write_text(json.dumps(meta, indent=2) + "\n")
        chart = compare_chart(table, tmp / "radar.png")
        write_card(
            tmp,
            "Base vs trained models (offcurate eval --compare)",
            COMPARE_CARD,
            {"compare": ("compare.parquet", table.to_arrow().schema)},
        )
    compared = table["benchmark"].unique(maintain_order=True).to_list()
    report.counts.update(
        {
            "models compared": len(labels),
            "benchmarks compared": len(compared),
            "radar.png": "radar" if chart == "radar" else "bars (a radar needs 3 benchmarks)",
        }
    )
    for label in labels[1:]:
        mine = table.filter(pl.col("model") == label)
        report.counts[f"mean pass@1 delta, {label} (points)"] = 100 * float(
            mine["pass_at_1_delta"].mean() or 0.0
        )
    for label, summary in zip(labels, summaries):
        alone = [b for b in summary["benchmark"].to_list() if b not in compared]
        if alone:
            report.dropped[f"benchmarks of {label} not in every folder"] = len(alone)
            report.counts[f"only in {label}"] = ", ".join(alone)
    return Comparison(table, labels, report.finish())


COMPARE_CARD = """
`compare.parquet` / `compare.json`: one row per benchmark present in every eval output and per model (the
first folder is the base): k, pass@1 with `pass_at_1_ci95` (half-width of its 95% interval over problems),
maj@k, problems scored, samples, `end_of_turn` (share of samples that ended their turn rather than hit the
token limit) and `answered` (share with an answer the extractor reads), and `pass_at_1_delta` /
`maj_at_k_delta` against the base (fractions; null on the base's rows). `radar.png`: pass@1 (left) and
maj@k (right), one axis per benchmark and one polygon per model (grouped bars below three benchmarks).
"""
