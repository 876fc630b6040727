"""PNG figures for ``offcurate stats`` and ``eval --compare``: read at a glance instead of a table.

Matplotlib with the Agg backend (no display needed); every bar carries its count, every radar axis a
benchmark name.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import polars as pl  # noqa: E402

_BLUE, _ORANGE, _GREY = "#3b75af", "#ef8636", "#9a9a9a"


def _save(fig, path: Path) -> None:
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _label_bars(ax, bars, labels: list[str]) -> None:
    for bar, text in zip(bars, labels):
        ax.annotate(
            text,
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )


def all_positive_by_difficulty(groups: pl.DataFrame, path: Path) -> None:
    """Share of labeled questions whose 16 teacher traces all agree, per dataset difficulty."""
    per_difficulty = (
        groups.filter(pl.col("source") != "(all)")
        .group_by("difficulty")
        .agg(pl.col("ok").sum(), pl.col("all_positive").sum())
        .sort("difficulty", nulls_last=True)
    )
    names = ["n/a" if d is None else str(d) for d in per_difficulty["difficulty"]]
    ok, positive = per_difficulty["ok"].to_list(), per_difficulty["all_positive"].to_list()
    share = [p / o if o else 0.0 for p, o in zip(positive, ok)]
    overall = sum(positive) / sum(ok) if sum(ok) else 0.0
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(names, share, color=_BLUE)
    _label_bars(ax, bars, [f"{p}/{o}" for p, o in zip(positive, ok)])
    ax.axhline(overall, color=_ORANGE, linestyle="--", label=f"overall {overall:.0%}")
    ax.set_ylim(0, 1.1)
    ax.set_xlabel("dataset difficulty")
    ax.set_ylabel("all-positive share of labeled questions")
    ax.set_title("Questions where every teacher trace agrees (A = 0 without the bias)")
    ax.legend(loc="upper right")
    _save(fig, path)


def pass_rate_histogram(hist: pl.DataFrame, path: Path) -> None:
    """Teacher pass rate (majority votes / traces) over labeled questions; the last bar is all-positive."""
    rates, counts = hist["pass_rate"].to_list(), hist["questions"].to_list()
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = [_ORANGE if r >= 1 else _BLUE for r in rates]
    bars = ax.bar([f"{r:.2f}" for r in rates], counts, color=colors)
    _label_bars(ax, bars, [str(c) for c in counts])
    ax.set_xlabel("teacher pass rate (share of traces agreeing with the majority)")
    ax.set_ylabel("questions")
    ax.set_title("Teacher pass-rate histogram (orange: all-positive)")
    ax.tick_params(axis="x", labelrotation=45)
    _save(fig, path)


def figure2(table: pl.DataFrame, path: Path) -> None:
    """The blog's Figure 2: on questions the teacher always solves, how often does the base model?"""
    labels, counts = table["base_pass_rate"].to_list(), table["questions"].to_list()
    total = sum(counts)
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = [_GREY if label == "(0.75, 1]" else _BLUE for label in labels]
    bars = ax.bar(labels, counts, color=colors)
    _label_bars(ax, bars, [f"{c} ({c / total:.0%})" if total else "0" for c in counts])
    ax.set_xlabel("base model pass rate")
    ax.set_ylabel("teacher all-positive questions")
    ax.set_title(f"Teacher always right, base model often not ({total} all-positive questions)")
    _save(fig, path)


def radar_chart(table: pl.DataFrame, labels: tuple[str, str], path: Path) -> None:
    """``offcurate eval --compare``: one axis per benchmark, base and trained as two polygons, pass@1
    and maj@k side by side. Each polygon is closed back to its first axis; radius 0-100%."""
    import math

    names = table["benchmark"].to_list()
    angles = [2 * math.pi * i / len(names) for i in range(len(names))]
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5), subplot_kw={"projection": "polar"})
    for ax, (metric, title) in zip(axes, (("pass_at_1", "pass@1"), ("maj_at_k", "maj@k"))):
        for side, label, color in (("base", labels[0], _GREY), ("trained", labels[1], _BLUE)):
            values = [100 * (v or 0.0) for v in table[f"{metric}_{side}"].to_list()]
            ax.plot([*angles, angles[0]], [*values, values[0]], color=color, marker="o", label=label)
            ax.fill([*angles, angles[0]], [*values, values[0]], color=color, alpha=0.15)
        ax.set_xticks(angles)
        ax.set_xticklabels(names, fontsize=9)
        ax.tick_params(axis="x", pad=10)
        ax.set_rlabel_position(180 / len(names))  # between the first two axes, off the polygons' corners
        ax.set_ylim(0, 100)
        ax.set_yticks([25, 50, 75, 100])
        ax.set_yticklabels(["25", "50", "75", "100%"], fontsize=7)
        ax.set_title(title, pad=18)
    axes[0].legend(loc="upper right", bbox_to_anchor=(1.25, 1.15), fontsize=8)
    _save(fig, path)
