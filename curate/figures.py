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


def difficulty_shares(groups: pl.DataFrame) -> tuple[pl.DataFrame, list[str]]:
    """Per dataset difficulty: labeled (``ok``) and all-positive questions, the rows worth a bar, and the
    difficulties left out because they hold no labeled question (a 0/0 bar says nothing)."""
    per_difficulty = (
        groups.filter(pl.col("source") != "(all)")
        .group_by("difficulty")
        .agg(pl.col("ok").sum(), pl.col("all_positive").sum())
        .sort("difficulty", nulls_last=True)
        .with_columns(pl.col("difficulty").cast(pl.String).fill_null("n/a"))
    )
    empty = per_difficulty.filter(pl.col("ok") == 0)["difficulty"].to_list()
    return per_difficulty.filter(pl.col("ok") > 0), empty


def all_positive_by_difficulty(groups: pl.DataFrame, path: Path) -> None:
    """Share of labeled questions whose 16 teacher traces all agree, per dataset difficulty."""
    drawn, empty = difficulty_shares(groups)
    ok, positive = drawn["ok"].to_list(), drawn["all_positive"].to_list()
    fig, ax = plt.subplots(figsize=(7, 4))
    bars = ax.bar(drawn["difficulty"].to_list(), [p / o for p, o in zip(positive, ok)], color=_BLUE)
    _label_bars(ax, bars, [f"{p}/{o}" for p, o in zip(positive, ok)])
    if sum(ok):
        overall = sum(positive) / sum(ok)
        ax.axhline(overall, color=_ORANGE, linestyle="--", label=f"overall {overall:.0%}")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no labeled question", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1.1)
    omitted = f" (no labeled question at {', '.join(empty)})" if empty else ""
    ax.set_xlabel(f"dataset difficulty{omitted}")
    ax.set_ylabel("all-positive share of labeled questions")
    ax.set_title("Questions where every teacher trace agrees (A = 0 without the bias)")
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


ALWAYS_RIGHT = "(0.75, 1]"  # the Figure 2 bin of questions the base model (nearly) always solves


def figure2_title(table: pl.DataFrame) -> str:
    """What the data says, not what the blog found: how many all-positive questions the base model
    solves at most 75% of the time, and how many it never solves."""
    counts = dict(zip(table["base_pass_rate"].to_list(), table["questions"].to_list()))
    total = sum(counts.values())
    if not total:
        return "No teacher all-positive question has base-model rollouts"
    below, never = total - counts.get(ALWAYS_RIGHT, 0), counts.get("0", 0)
    return (
        f"Base model on the {total} questions every teacher trace gets right:\n"
        f"pass rate ≤ 0.75 on {below} ({below / total:.0%}), never right on {never} ({never / total:.0%})"
    )


def figure2(table: pl.DataFrame, path: Path) -> None:
    """The blog's Figure 2: on questions the teacher always solves, how often does the base model?"""
    labels, counts = table["base_pass_rate"].to_list(), table["questions"].to_list()
    total = sum(counts)
    fig, ax = plt.subplots(figsize=(7, 4))
    colors = [_GREY if label == ALWAYS_RIGHT else _BLUE for label in labels]
    bars = ax.bar(labels, counts, color=colors)
    _label_bars(ax, bars, [f"{c} ({c / total:.0%})" if total else "0" for c in counts])
    ax.set_xlabel("base model pass rate")
    ax.set_ylabel("teacher all-positive questions")
    ax.set_title(figure2_title(table), fontsize=10)
    ax.margins(y=0.12)  # room for the count above the tallest bar
    _save(fig, path)


RADAR_MIN_BENCHMARKS = 3  # a polygon needs three axes: one benchmark is a dot, two a line


def compare_chart(table: pl.DataFrame, path: Path) -> str:
    """``offcurate eval --compare``: pass@1 and maj@k side by side, every model per benchmark (``table``:
    one row per benchmark and model, models in drawing order, the base first), as a radar (three
    benchmarks or more) or grouped bars (fewer); returns which ("radar" or "bars")."""
    names = table["benchmark"].unique(maintain_order=True).to_list()
    models = table["model"].unique(maintain_order=True).to_list()
    kind = "radar" if len(names) >= RADAR_MIN_BENCHMARKS else "bars"
    polar = {"projection": "polar"} if kind == "radar" else {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.5 if polar else 4.5), subplot_kw=polar)
    for ax, (metric, title) in zip(axes, (("pass_at_1", "pass@1"), ("maj_at_k", "maj@k"))):
        values = []
        for model in models:
            scores = dict(table.filter(pl.col("model") == model).select("benchmark", metric).iter_rows())
            values.append([100 * (scores.get(n) or 0.0) for n in names])
        (_radar if polar else _bars)(ax, names, values, models)
        ax.set_title(title, pad=18 if polar else 6)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(models), 5), frameon=False)
    # the legend sits below both panels, clear of the data; a radar's title needs room above its labels
    fig.tight_layout(rect=(0, 0.07, 1, 0.95 if polar else 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return kind


# the base: a larger hollow square drawn above the others, so equal scores still show it; then one
# colour per trained model
_BASE_STYLE = {"color": _GREY, "marker": "s", "markersize": 9, "markerfacecolor": "none", "zorder": 3}
_COLORS = (_BLUE, _ORANGE, "#4a9a4a", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c")


def _style(i: int) -> dict:
    if i == 0:
        return _BASE_STYLE
    return {"color": _COLORS[(i - 1) % len(_COLORS)], "marker": "o", "markersize": 5, "zorder": 2}


def _radar(ax, names: list[str], values: list[list[float]], labels: list[str]) -> None:
    """One axis per benchmark, one closed polygon per model; radius 0-100%."""
    import math

    angles = [2 * math.pi * i / len(names) for i in range(len(names))]
    for i, (model_values, label) in enumerate(zip(values, labels)):
        style = _style(i)
        closed = [*model_values, model_values[0]]
        ax.plot([*angles, angles[0]], closed, label=label, **style)
        ax.fill([*angles, angles[0]], closed, color=style["color"], alpha=0.12 if len(labels) <= 3 else 0.06)
    ax.set_xticks(angles)
    ax.set_xticklabels(names, fontsize=9)
    ax.tick_params(axis="x", pad=10)
    ax.set_rlabel_position(180 / len(names))  # between the first two axes, off the polygons' corners
    ax.set_ylim(0, 100)
    ax.set_yticks([25, 50, 75, 100])
    ax.set_yticklabels(["25", "50", "75", "100%"], fontsize=7)


def _bars(ax, names: list[str], values: list[list[float]], labels: list[str]) -> None:
    """The models side by side per benchmark, each bar with its score."""
    width = 0.76 / len(labels)
    for i, (model_values, label) in enumerate(zip(values, labels)):
        offset = (i - (len(labels) - 1) / 2) * width
        x = [j + offset for j in range(len(names))]
        bars = ax.bar(x, model_values, width, label=label, color=_style(i)["color"])
        _label_bars(ax, bars, [f"{v:.1f}" for v in model_values])
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names)
    ax.set_xlim(-0.75, len(names) - 0.25)
    ax.set_ylim(0, 110)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.set_ylabel("% of problems")
