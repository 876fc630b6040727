"""``sample``: bucket targets, whole question groups, per-question caps, the bucket table (hand votes)."""

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import write_voted_groups

from offcurate.curate.io.errors import InputError
from offcurate.curate.io.ids import question_id
from offcurate.curate.sample import allocate, parse_shares, run_sample

# question -> answers; teacher pass rate = majority votes / traces: 4 easy (1.0), 6 medium (0.75 x3 and
# 0.5 x3: the edge 0.5 is medium), 1 hard (2/5 = 0.4), and a tie (not ok: never sampled)
GROUPS = {
    **{f"easy {i}": ["2", "2", "2", "2"] for i in range(4)},
    **{f"medium {i}": ["5", "5", "5", "6"] for i in range(3)},
    "half 0": ["7", "8", "9", "9"],
    "half 1": ["1", "1", "2", "3"],
    "half 2": ["4", "4", None, "5"],
    "hard": ["1", "1", "2", "3", None],
    "tie": ["1", "1", "2", "2"],
}


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    return write_voted_groups(tmp_path_factory.mktemp("sample"), GROUPS)  # a question's rows over 2 shards


def read_mix(folder):
    traces = pl.read_parquet(folder / "trajectories" / "*.parquet")
    questions = pl.read_parquet(folder / "questions" / "*.parquet")
    buckets = pl.read_parquet(folder / "buckets.parquet")
    return traces, questions, buckets


@pytest.mark.parametrize(
    "text, expected",
    [
        pytest.param("hard=0.5,medium=0.3,easy=0.2", {"hard": 0.5, "medium": 0.3, "easy": 0.2}, id="weights"),
        pytest.param(" hard = 2 , easy=0 ", {"hard": 2.0, "easy": 0.0}, id="spaces_and_zero"),
    ],
)
def test_parse_shares(text, expected):
    assert parse_shares(text, "--weights") == expected


@pytest.mark.parametrize(
    "text", [pytest.param("hard", id="no_value"), pytest.param("hard=x", id="not_a_number"),
             pytest.param("hard=-1", id="negative"), pytest.param("hard=0", id="all_zero")],
)  # fmt: skip
def test_parse_shares_rejects(text):
    with pytest.raises(InputError, match="--weights"):
        parse_shares(text, "--weights")


@pytest.mark.parametrize(
    "available, weights, total, expected",
    [
        pytest.param({"a": 10, "b": 10}, {"a": 0.5, "b": 0.5}, 6, {"a": 3, "b": 3}, id="even_split"),
        # 7 * (0.5, 0.3, 0.2) = 3.5, 2.1, 1.4 -> floors 3, 2, 1; the one left goes to the largest remainder
        pytest.param(
            {"a": 9, "b": 9, "c": 9}, {"a": 5, "b": 3, "c": 2}, 7, {"a": 4, "b": 2, "c": 1}, id="remainder"
        ),
        # no total: the most all buckets can fill: min(3/0.5, 19/0.3, 17/0.2) = 6
        pytest.param(
            {"a": 3, "b": 19, "c": 17}, {"a": 0.5, "b": 0.3, "c": 0.2}, None, {"a": 3, "b": 2, "c": 1},
            id="most_that_fit",
        ),
        pytest.param({"a": 4}, {"a": 1, "b": 0}, None, {"a": 4}, id="zero_weight_ignored"),
        # empty buckets do not cap the total: hard alone fills 6 / 0.5 = 12 -> 6, 3.6, 2.4 -> 6, 4, 2
        pytest.param(
            {"hard": 6}, {"hard": 0.5, "medium": 0.3, "easy": 0.2}, None, {"hard": 6, "medium": 4, "easy": 2},
            id="empty_buckets_do_not_cap",
        ),
        pytest.param({}, {"a": 1}, None, {"a": 0}, id="all_empty"),
    ],
)  # fmt: skip
def test_allocate(available, weights, total, expected):
    got = allocate(available, weights, total)
    assert got == expected
    assert sum(got.values()) == (total if total is not None else sum(expected.values()))


def test_counts_take_whole_groups_and_report_shortfall(voted, tmp_path):
    report = run_sample(voted, tmp_path / "mix", counts="easy=2,hard=5", seed=1)
    traces, questions, buckets = read_mix(tmp_path / "mix")
    assert sorted(questions["bucket"].to_list()) == ["easy", "easy", "hard"]
    assert questions.filter(pl.col("bucket") == "hard")["question_id"].to_list() == [question_id("hard")]
    # whole groups (4 + 4 + 5 traces), rewards as voted, the bucket on every trace
    assert sorted(traces.group_by("question_id").len()["len"].to_list()) == [4, 4, 5]
    assert set(traces["bucket"]) == {"easy", "hard"}
    hard = traces.filter(pl.col("question_id") == question_id("hard"))
    assert sorted(hard["reward"].to_list()) == [0.0, 0.0, 0.0, 1.0, 1.0]
    table = {r["bucket"]: r for r in buckets.iter_rows(named=True)}
    assert (table["hard"]["available"], table["hard"]["target"], table["hard"]["taken"]) == (1, 5, 1)
    assert (table["hard"]["short"], table["easy"]["short"], table["easy"]["trajectories"]) == (4, 0, 8)
    assert (table["medium"]["available"], table["medium"]["target"], table["medium"]["taken"]) == (6, 0, 0)
    assert report.counts["questions taken"] == 3 and report.counts["trajectories taken"] == 13


def test_weights_fill_the_most_and_seed_decides(voted, tmp_path):
    # 4 easy, 6 medium, 1 hard; hard=0.5,easy=0.5 -> at most 2 questions: 1 + 1
    run_sample(voted, tmp_path / "a", weights="hard=0.5,easy=0.5", seed=0)
    run_sample(voted, tmp_path / "b", weights="hard=0.5,easy=0.5", seed=0)
    a, b = read_mix(tmp_path / "a")[1], read_mix(tmp_path / "b")[1]
    assert a["question_id"].to_list() == b["question_id"].to_list()
    assert sorted(a["bucket"].to_list()) == ["easy", "hard"]
    picks = {read_mix_seed(voted, tmp_path, seed) for seed in range(6)}
    assert len(picks) > 1  # four easy questions to choose from: the seed changes which


HARD_ONLY = {f"hard {i}": ["1", "1", "2", "3", None] for i in range(6)} | {"tie": ["1", "1", "2", "2"]}


def test_weights_take_what_fits_when_buckets_are_empty(tmp_path):
    # 6 hard questions (pass rate 2/5), no medium, no easy: the hard bucket is taken whole, the rest reported
    voted = write_voted_groups(tmp_path / "hard", HARD_ONLY)
    report = run_sample(voted, tmp_path / "mix", weights="hard=0.5,medium=0.3,easy=0.2", seed=0)
    traces, questions, buckets = read_mix(tmp_path / "mix")
    assert sorted(questions["question_id"]) == sorted(question_id(q) for q in HARD_ONLY if q != "tie")
    assert traces.height == 30 and set(traces["bucket"]) == {"hard"}
    rows = {
        r["bucket"]: (r["available"], r["target"], r["taken"], r["short"])
        for r in buckets.iter_rows(named=True)
    }
    assert rows == {"hard": (6, 6, 6, 0), "medium": (0, 4, 0, 4), "easy": (0, 2, 0, 2)}
    assert report.counts["questions taken"] == 6
    assert report.counts["questions short (asked of buckets that held too few)"] == 6


def test_weights_on_empty_buckets_only_is_an_error(tmp_path):
    voted = write_voted_groups(tmp_path / "hard", HARD_ONLY)
    with pytest.raises(InputError, match="the mix would be empty"):
        run_sample(voted, tmp_path / "mix", weights="medium=0.6,easy=0.4")
    assert not (tmp_path / "mix").exists()


def read_mix_seed(voted, tmp_path, seed):
    out = tmp_path / f"seed{seed}"
    run_sample(voted, out, counts="easy=1", seed=seed)
    return read_mix(out)[1]["question_id"].item()


def test_max_per_question_keeps_a_seeded_subset(voted, tmp_path):
    run_sample(voted, tmp_path / "mix", counts="medium=6", max_per_question=3, seed=4)
    traces, questions, _ = read_mix(tmp_path / "mix")
    assert traces.group_by("question_id").len()["len"].to_list() == [3] * 6
    assert questions["n_taken"].to_list() == [3] * 6 and questions["n_samples"].to_list() == [4] * 6
    run_sample(voted, tmp_path / "again", counts="medium=6", max_per_question=3, seed=4)
    again = read_mix(tmp_path / "again")[0]
    key = ["question_id", "sample_idx"]
    assert traces.select(key).sort(key).equals(again.select(key).sort(key))


def test_base_pass_rate_buckets(voted, tmp_path):
    stats = tmp_path / "stats"
    stats.mkdir()
    base = {"easy 0": 0.0, "easy 1": 0.125, "easy 2": 1.0, "medium 0": 0.75}  # others: no rollouts
    pq.write_table(
        pa.table({"question_id": [question_id(q) for q in base], "base_pass_rate": list(base.values())}),
        stats / "base_pass_rate.parquet",
    )
    run_sample(voted, tmp_path / "mix", bucket_by="base_pass_rate", base=stats, counts="hard=5")
    _, questions, buckets = read_mix(tmp_path / "mix")
    assert sorted(questions["question_id"]) == sorted([question_id("easy 0"), question_id("easy 1")])
    table = dict(buckets.select("bucket", "available").iter_rows())
    assert table == {"hard": 2, "medium": 1, "easy": 1, "unlabeled": 7}


@pytest.mark.parametrize(
    "kwargs, message",
    [
        pytest.param({"weights": "easy=1", "counts": "easy=1"}, "not both", id="weights_and_counts"),
        pytest.param({"counts": "easy=1", "total": 3}, "--questions goes with", id="total_with_counts"),
        pytest.param({"counts": "simple=1"}, "unknown bucket simple", id="unknown_bucket"),
        pytest.param({"bucket_by": "base_pass_rate"}, "needs --base", id="base_missing"),
        pytest.param({"bucket_by": "loss"}, "--bucket-by must be one of", id="unknown_measure"),
        pytest.param({"counts": "easy=0"}, "give at least one bucket", id="nothing_asked"),
    ],
)  # fmt: skip
def test_bad_options(voted, tmp_path, kwargs, message):
    with pytest.raises(InputError, match=message):
        run_sample(voted, tmp_path / "mix", **kwargs)
    assert not (tmp_path / "mix").exists()


def test_train_reads_the_mix(voted, tmp_path):
    pytest.importorskip("torch")
    from offcurate.train.data import open_voted

    run_sample(voted, tmp_path / "mix", counts="easy=2,medium=1")
    index = open_voted(tmp_path / "mix")
    assert len(index.groups) == 3 and index.n_rows == 12
