"""``vote`` as a stage: hand-written OpenThoughts3 rows in, exact labels out, in files notebooks can read."""

import re

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import group_rows, ot3_row, trace, write_ot3

from offcurate.curate.filter import run_filter
from offcurate.curate.io.ids import question_id
from offcurate.curate.vote import QUESTION_SCHEMA, TRAJECTORY_SCHEMA, run_vote

REVISED = r"<think>First I get \boxed{5}. Wait, that is wrong; it is 6.</think> The answer is $\boxed{6}$."
STATED = "<think>6 it is.</think> The final answer is $6$."
UNTAGGED = r"Direct solution: 6. \boxed{6}"
TRUNCATED = r"<think>I think \boxed{6} but let me check more carefully and"

QUESTIONS = {
    # question -> (responses, status, majority answer, rewards in response order)
    "Q-rules: 2*3?": (
        [REVISED, STATED, UNTAGGED, TRUNCATED, trace("5")],
        "ok",
        "6",
        [1, 1, 1, 0, 0],
    ),
    "Q-equivalent: half?": (
        [
            trace(r"\frac{1}{2}"),
            trace("0.5"),
            trace(r"\dfrac12"),
            trace("2"),
            trace("2"),
            trace(r"\frac{1}{2}"),
        ],
        "ok",
        r"\frac{1}{2}",  # the most written form of the majority class
        [1, 1, 1, 0, 0, 1],
    ),
    "Q-tie": ([trace("1"), trace("2")], "tie", None, [None, None]),
    "Q-none": ([TRUNCATED, trace(None)], "no_answer", None, [None, None]),
    "Q-unanimous": ([trace("12")] * 3, "ok", "12", [1, 1, 1]),
}


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    root = tmp_path_factory.mktemp("vote")
    rows = [ot3_row(q, r) for q, (responses, *_) in QUESTIONS.items() for r in responses]
    rows.append(ot3_row("science q", trace("1"), domain="science"))
    write_ot3(root / "raw", [rows[::2], rows[1::2]])  # each question spread over both shards
    run_filter(root / "raw", root / "math")
    report = run_vote(root / "math", root / "voted", workers=2)
    return root / "voted", report


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_exact_labels(voted, question):
    folder, _ = voted
    responses, status, majority, rewards = QUESTIONS[question]
    qid = question_id(question)
    q = (
        pl.read_parquet(folder / "questions" / "*.parquet")
        .filter(pl.col("question_id") == qid)
        .row(0, named=True)
    )
    assert (q["status"], q["majority_answer"], q["n_samples"]) == (status, majority, len(responses))
    assert q["all_positive"] == (status == "ok" and all(r == 1 for r in rewards))
    traces = pl.read_parquet(folder / "trajectories" / "*.parquet").filter(pl.col("question_id") == qid)
    by_response = dict(zip(traces["response"], traces["reward"]))
    assert [by_response[r] for r in responses] == [None if r is None else float(r) for r in rewards]


def test_output_contract(voted):
    folder, report = voted
    traces = pl.read_parquet(folder / "trajectories" / "*.parquet")
    questions = pl.read_parquet(folder / "questions" / "*.parquet")
    assert traces.columns == TRAJECTORY_SCHEMA.names
    assert questions.columns == QUESTION_SCHEMA.names
    assert sorted(p.name for p in (folder / "trajectories").glob("*.parquet")) == [
        "train-00000-of-00002.parquet",
        "train-00001-of-00002.parquet",
    ]
    assert traces.height == sum(len(v[0]) for v in QUESTIONS.values())
    assert report.counts["status ok"] == 3 and report.counts["status tie"] == 1
    assert report.counts["all-positive questions"] == 1
    # cluster is null exactly where answer is null
    assert traces.filter(pl.col("answer").is_null() != pl.col("cluster").is_null()).height == 0


def test_notebook_readers(voted):
    """The folder opens as it is in datasets, polars (lazy) and pandas."""
    import datasets
    import pandas as pd

    folder, _ = voted
    ds = datasets.load_dataset(str(folder), "trajectories", split="train")
    assert ds.num_rows == 18 and "reward" in ds.column_names
    qs = datasets.load_dataset("parquet", data_dir=str(folder / "questions"), split="train")
    assert qs.num_rows == 5
    assert pl.scan_parquet(folder / "trajectories" / "*.parquet").select(pl.len()).collect().item() == 18
    assert len(pd.read_parquet(folder / "questions")) == 5


def test_slices_partition_the_questions(voted, tmp_path):
    folder, _ = voted
    math = folder.parent / "math"
    parts = []
    for index in range(3):
        try:
            run_vote(math, tmp_path / f"slice-{index}", workers=1, shard_index=index, num_shards=3)
        except Exception as err:  # a slice may hold no question at all
            assert "no trajectories in slice" in str(err)
            continue
        parts.append(pl.read_parquet(tmp_path / f"slice-{index}" / "trajectories" / "*.parquet"))
    merged = pl.concat(parts).sort("question_id", "sample_idx")
    whole = pl.read_parquet(folder / "trajectories" / "*.parquet").sort("question_id", "sample_idx")
    assert merged.equals(whole)


def test_many_spill_partitions_give_the_labels_of_one(voted, tmp_path):
    """Two rows per partition (9 partitions) against one: both tables equal, row for row, in order."""
    folder, report = voted
    many = run_vote(folder.parent / "math", tmp_path / "many", workers=2, rows_per_partition=2)
    assert (report.counts["spill partitions"], many.counts["spill partitions"]) == (1, 9)
    for table in ("trajectories", "questions"):
        one = pl.read_parquet(folder / table / "*.parquet")
        assert pl.read_parquet(tmp_path / "many" / table / "*.parquet").equals(one), table
    assert not list(tmp_path.glob(".many*")), "spill and temporary folder removed"


def test_duplicate_sample_idx_is_an_input_error(voted, tmp_path):
    from offcurate.curate.io.errors import InputError

    folder, _ = voted
    math = folder.parent / "math"
    twice = tmp_path / "twice"
    twice.mkdir()
    for i, path in enumerate(sorted(math.glob("*.parquet")) * 2):
        (twice / f"{i}.parquet").write_bytes(path.read_bytes())
    with pytest.raises(InputError, match="more than once"):
        run_vote(twice, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "column, message",
    [
        pytest.param("response", "null response in ", id="null_response_has_no_answer_never_reward_0"),
        pytest.param("question_id", "null question_id in ", id="null_question_id"),
    ],
)
def test_null_values_are_input_errors(voted, tmp_path, column, message):
    """A trace without text has no answer: scoring it 0.0 would make all-positive questions look mixed."""
    from offcurate.curate.io.errors import InputError

    folder, _ = voted
    shard = sorted((folder.parent / "math").glob("*.parquet"))[0]
    table = pq.read_table(shard)
    values = table.column(column).to_pylist()
    values[3] = None
    broken = tmp_path / "broken"
    broken.mkdir()
    index = table.schema.get_field_index(column)
    pq.write_table(table.set_column(index, column, pa.array(values, pa.string())), broken / shard.name)
    where = f"{message}{broken / shard.name} (column '{column}', 1 rows, first: row 4)"
    with pytest.raises(InputError, match=re.escape(where)):
        run_vote(broken, tmp_path / "out", workers=1)
    assert not (tmp_path / "out").exists()


def test_group_rows_builder_matches_rules():
    rows = group_rows("q", ["1", None])
    assert rows[1]["conversations"][1]["value"].startswith("<think>")
