"""Figures say what the data says: titles from the counts, no 0/0 bars, bars instead of a degenerate radar."""

import matplotlib.image
import polars as pl
import pytest

from offcurate.curate.figures import compare_chart, difficulty_shares, figure2_title

BINS = ["0", "(0, 0.25]", "(0.25, 0.5]", "(0.5, 0.75]", "(0.75, 1]"]


@pytest.mark.parametrize(
    "counts, title",
    [
        pytest.param(
            [1, 0, 2, 3, 40],
            "Base model on the 46 questions every teacher trace gets right:\n"
            "pass rate ≤ 0.75 on 6 (13%), never right on 1 (2%)",
            id="base_mostly_right",
        ),
        pytest.param(
            [20, 10, 5, 3, 2],
            "Base model on the 40 questions every teacher trace gets right:\n"
            "pass rate ≤ 0.75 on 38 (95%), never right on 20 (50%)",
            id="base_mostly_wrong",
        ),
        pytest.param([0] * 5, "No teacher all-positive question has base-model rollouts", id="empty"),
    ],
)
def test_figure2_title_comes_from_the_counts(counts, title):
    assert figure2_title(pl.DataFrame({"base_pass_rate": BINS, "questions": counts})) == title


def test_difficulty_chart_skips_difficulties_without_labeled_questions():
    groups = pl.DataFrame(
        {
            "source": ["a", "b", "a", "a", "b", "a", "(all)"],
            "difficulty": [2, 5, 5, 7, 9, None, None],
            "ok": [0, 4, 6, 6, 0, 3, 19],
            "all_positive": [0, 1, 3, 1, 0, 3, 8],
        }
    )
    drawn, empty = difficulty_shares(groups)
    assert drawn.select("difficulty", "ok", "all_positive").rows() == [
        ("5", 10, 4),
        ("7", 6, 1),
        ("n/a", 3, 3),
    ]
    assert empty == ["2", "9"]


def comparison(n, models=("base", "trained")):
    """The long table `eval --compare` draws: one row per benchmark and model."""
    names = ["math500", "aime24", "amc23", "minerva"][:n]
    rows = [
        {"benchmark": b, "model": m, "pass_at_1": 0.25 * (i + 1), "maj_at_k": 0.2 * (j + 1)}
        for i, b in enumerate(names)
        for j, m in enumerate(models)
    ]
    return pl.DataFrame(rows)


@pytest.mark.parametrize("n, kind", [(1, "bars"), (2, "bars"), (3, "radar"), (4, "radar")])
@pytest.mark.parametrize("models", [("base", "trained"), ("base", "bias", "no-bias", "sft")], ids=["2", "4"])
def test_compare_chart_needs_three_benchmarks_for_a_radar(tmp_path, n, kind, models):
    path = tmp_path / "radar.png"
    assert compare_chart(comparison(n, models), path) == kind
    height, width, _ = matplotlib.image.imread(path).shape
    assert width > height > 300
