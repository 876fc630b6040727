"""``stats``: group statistics, buckets, figures and Figure 2 from base rollouts, on hand-built votes."""

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import group_rows, write_ot3

from offcurate.curate.buckets import assign_buckets, bucket_labels
from offcurate.curate.filter import run_filter
from offcurate.curate.stats import run_stats
from offcurate.curate.vote import run_vote

# question -> (answers, difficulty); teacher pass rates 1, 1, 0.75, 0.5 and one tie
GROUPS = {
    "easy A": (["2", "2", "2", "2"], 1),
    "easy B": (["3", "3", "3", "3"], 1),
    "medium": (["5", "5", "5", "6"], 5),
    "hard": (["7", "7", "8", None], 9),
    "tie": (["1", "1", "2", "2"], 9),
}


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    root = tmp_path_factory.mktemp("stats")
    rows = [r for q, (answers, d) in GROUPS.items() for r in group_rows(q, answers, difficulty=d)]
    write_ot3(root / "raw", [rows])
    run_filter(root / "raw", root / "math")
    run_vote(root / "math", root / "voted", workers=1)
    return root


def test_group_stats_and_figures(voted):
    report = run_stats(voted / "voted", voted / "stats")
    groups = pl.read_parquet(voted / "stats" / "by_group.parquet")
    overall = groups.filter(pl.col("source") == "(all)").row(0, named=True)
    assert (overall["questions"], overall["ok"], overall["tie"], overall["all_positive"]) == (5, 4, 1, 2)
    assert overall["all_positive_fraction"] == pytest.approx(0.5)
    assert overall["mean_pass_rate"] == pytest.approx((1 + 1 + 0.75 + 0.5) / 4)
    per_difficulty = {
        r["difficulty"]: r["all_positive"]
        for r in groups.filter(pl.col("source") != "(all)").iter_rows(named=True)
    }
    assert per_difficulty == {1: 2, 5: 0, 9: 0}
    hist = pl.read_parquet(voted / "stats" / "pass_rate_hist.parquet")
    assert dict(zip(hist["pass_rate"], hist["questions"])) == {0.5: 1, 0.75: 1, 1.0: 2}
    buckets = pl.read_parquet(voted / "stats" / "buckets.parquet")
    assert dict(buckets.group_by("bucket").len().iter_rows()) == {"easy": 2, "medium": 2, "unlabeled": 1}
    for png in ("all_positive_by_difficulty.png", "pass_rate_hist.png"):
        assert (voted / "stats" / png).read_bytes()[:4] == b"\x89PNG"
    assert report.counts["all-positive"] == 2


@pytest.mark.parametrize(
    "by, edges, expected",
    [
        pytest.param("pass_rate", (0.5, 1.0), ["hard", "medium", "easy"], id="default_names"),
        pytest.param("pass_rate", (0.6, 0.8), ["[-inf, 0.6)", "[0.6, 0.8)", "[0.8, inf)"], id="custom_edges"),
        pytest.param("difficulty", (4, 7), ["easy", "medium", "hard"], id="difficulty_default_names"),
        pytest.param("difficulty", (3, 9), ["[-inf, 3)", "[3, 9)", "[9, inf)"], id="difficulty_custom"),
        pytest.param("base_pass_rate", (0.5, 1.0), ["hard", "medium", "easy"], id="base_default_names"),
    ],
)
def test_bucket_labels(by, edges, expected):
    assert bucket_labels(edges, by) == expected


def test_buckets_by_difficulty():
    frame = pl.DataFrame(
        {
            "question_id": ["a", "b", "c"],
            "source": ["s"] * 3,
            "difficulty": [1, 5, None],
            "status": ["ok"] * 3,
            "pass_rate": [1.0, 0.5, 0.25],
            "all_positive": [True, False, False],
        }
    )
    got = assign_buckets(frame, "difficulty", (4, 7))["bucket"].to_list()
    assert got == ["easy", "medium", "unlabeled"]


def test_figure2_from_base_rollouts(voted, tmp_path):
    # base model: on "easy A" right 1 of 4, on "easy B" right 4 of 4, on "medium" right 2 of 2
    rollouts = {
        "easy A": [r"\boxed{2}", r"\boxed{5}", "no idea", r"\boxed{1}"],
        "easy B": [r"\boxed{3}", r"\boxed{3.0}", r"\boxed{\frac{6}{2}}", r"\boxed{3}"],
        "medium": [r"\boxed{5}", r"\boxed{5}"],
    }
    questions = [q for q, rs in rollouts.items() for _ in rs]
    responses = [r for rs in rollouts.values() for r in rs]
    (tmp_path / "roll").mkdir()
    pq.write_table(pa.table({"question": questions, "response": responses}), tmp_path / "roll" / "r.parquet")
    report = run_stats(voted / "voted", tmp_path / "stats", base_rollouts=tmp_path / "roll", workers=1)
    base = pl.read_parquet(tmp_path / "stats" / "base_pass_rate.parquet").sort(
        "teacher_pass_rate", "base_pass_rate"
    )
    assert base["base_pass_rate"].to_list() == [1.0, 0.25, 1.0]
    fig2 = pl.read_parquet(tmp_path / "stats" / "figure2.parquet")
    assert dict(fig2.iter_rows()) == {
        "0": 0,
        "(0, 0.25]": 1,
        "(0.25, 0.5]": 0,
        "(0.5, 0.75]": 0,
        "(0.75, 1]": 1,
    }
    assert report.counts["  ... base model not always right"] == 1
    assert (tmp_path / "stats" / "figure2.png").exists()
