"""The figure of ``stats`` on a set with gold answers: from which vote share can the majority be trusted?

    accuracy_vs_vote_share(vote_share_table(questions), Path("stats/gold_accuracy_vs_vote_share.png"))

Bars: pseudo-label accuracy per vote-share bin, each with its count (right / questions). Line: the
accuracy over every question at or above the bin's lower edge, i.e. what a user keeps by requiring at
least that vote share.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from .figures import _BLUE, _ORANGE, _label_bars, _save, plt


def accuracy_vs_vote_share(table: pl.DataFrame, path: Path) -> None:
    drawn = table.filter(pl.col("questions") > 0)
    labels = drawn["vote_share_bin"].to_list()
    fig, ax = plt.subplots(figsize=(7, 4))
    if drawn.height:
        bars = ax.bar(labels, drawn["accuracy"].to_list(), color=_BLUE, label="accuracy in the bin")
        right, total = drawn["majority_right"].to_list(), drawn["questions"].to_list()
        _label_bars(ax, bars, [f"{r}/{n}" for r, n in zip(right, total)])
        ax.plot(
            labels,
            drawn["accuracy_from_here"].to_list(),
            color=_ORANGE,
            marker="o",
            label="accuracy at this vote share or above",
        )
        ax.legend(loc="upper center", ncol=2, fontsize=8, frameon=False)
    else:
        ax.text(0.5, 0.5, "no labeled question with a gold", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylim(0, 1.25)
    ax.set_xlabel("vote share of the majority answer (majority votes / answered traces)")
    ax.set_ylabel("pseudo-label accuracy (majority = gold)")
    ax.set_title("Majority-vote pseudo-labels against the dataset's gold answers")
    _save(fig, path)
