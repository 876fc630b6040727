"""``filter``: question ids, content-ranked sample_idx, drops counted by reason."""

import random

import polars as pl
import pyarrow as pa
import pytest
from builders import OT3_SCHEMA, group_rows, ot3_row, trace, write_ot3

from offcurate.curate.filter import keep_row, run_filter, split_conversation
from offcurate.curate.filter_ot3 import OpenThoughts3
from offcurate.curate.io.ids import question_id


@pytest.mark.parametrize(
    "a, b",
    [
        pytest.param("What is 1+1?", "What  is 1+1?", id="double_space"),
        pytest.param("What is 1+1?", "What is 1+1?\n", id="trailing_newline"),
        pytest.param("What is\n1+1?", " What is\t1+1? ", id="tabs_and_newlines"),
    ],
)
def test_question_id_ignores_whitespace_noise(a, b):
    assert question_id(a) == question_id(b)
    assert len(question_id(a)) == 16


def test_question_id_distinguishes_questions():
    assert question_id("What is 1+1?") != question_id("What is 1+2?")


SPLIT_CASES = [
    pytest.param(
        [{"from": "human", "value": "q"}, {"from": "gpt", "value": "r"}], ("q", "r"), id="human_gpt"
    ),
    pytest.param(
        [{"from": "user", "value": "q"}, {"from": "assistant", "value": "r"}],
        ("q", "r"),
        id="user_assistant",
    ),
    pytest.param(
        [
            {"from": "system", "value": "s"},
            {"from": "human", "value": "q"},
            {"from": "gpt", "value": "r"},
        ],
        ("q", "r"),
        id="system_first",
    ),
    pytest.param([{"from": "human", "value": "q"}], "no_teacher_turn", id="no_teacher"),
    pytest.param([{"from": "gpt", "value": "r"}], "no_question_turn", id="no_question"),
    pytest.param(
        [{"from": "human", "value": "q"}, {"from": "gpt", "value": "  "}],
        "empty_response",
        id="empty_response",
    ),
    pytest.param(
        [{"from": "human", "value": ""}, {"from": "gpt", "value": "r"}],
        "empty_question",
        id="empty_question",
    ),
    pytest.param(None, "no_conversation", id="null"),
    pytest.param([], "no_conversation", id="empty"),
    pytest.param(
        [None, {"from": "human", "value": "q"}, None, {"from": "gpt", "value": "r"}],
        ("q", "r"),
        id="null_turns_skipped",
    ),
    pytest.param(
        [
            {"from": "gpt", "value": "r0"},
            {"from": "human", "value": "q"},
            {"from": "assistant", "value": "r"},
        ],
        ("q", "r"),
        id="teacher_before_question_ignored",
    ),
    pytest.param(
        [{"from": "human", "value": "q"}, {"from": "gpt", "value": "\u3000\x1c\n"}],
        "empty_response",
        id="unicode_whitespace_response",
    ),
]


@pytest.mark.parametrize("turns, expected", SPLIT_CASES)
def test_split_conversation(turns, expected):
    assert split_conversation(turns) == expected


@pytest.mark.parametrize("turns, expected", SPLIT_CASES)
def test_batch_reader_agrees_with_split_conversation(turns, expected):
    """``OpenThoughts3.read`` decides a whole batch with Arrow; each row as ``split_conversation``."""
    rows = [ot3_row("pad", "pad"), {**ot3_row("x", None), "conversations": turns}]
    batch = pa.RecordBatch.from_pylist(rows, OT3_SCHEMA)
    kept, reasons = OpenThoughts3().read(batch.slice(1))
    if isinstance(expected, str):
        assert reasons.to_pylist() == [expected] and kept.num_rows == 0
    else:
        assert reasons.to_pylist() == [None]
        assert (kept["question"][0].as_py(), kept["response"][0].as_py()) == expected


def test_keep_row_reports_domain():
    assert keep_row("code", [], {"math"}) == (False, "domain=code")


def test_batch_reader_reports_domains_and_keeps_order():
    rows = [ot3_row("a", "ra"), ot3_row("b", "rb", domain="code"), ot3_row("c", "rc"), ot3_row("d", "rd")]
    rows[3]["domain"] = None
    kept, reasons = OpenThoughts3().read(pa.RecordBatch.from_pylist(rows, OT3_SCHEMA))
    assert reasons.to_pylist() == [None, "domain=code", None, "domain=None"]
    assert kept["question"].to_pylist() == ["a", "c"] and kept["response"].to_pylist() == ["ra", "rc"]


def _rows():
    rows = group_rows("Q1: 2+2?", ["4", "4", "5", None]) + group_rows("Q2: 3*3?", ["9", "9"])
    rows.append(ot3_row("Q1:  2+2? ", trace("4")))  # whitespace noise: same question
    rows.append(ot3_row("Q1: 2+2?", trace("4")))  # identical duplicate trajectory: kept
    rows.append(ot3_row("code q", trace("1"), domain="code"))
    rows.append(ot3_row("Q3", None))
    return rows


def test_filter_end_to_end(tmp_path):
    rows = _rows()
    write_ot3(tmp_path / "raw", [rows[:5], rows[5:]])
    report = run_filter(tmp_path / "raw", tmp_path / "math")
    out = pl.read_parquet(tmp_path / "math" / "*.parquet")
    assert out.columns == [
        "question_id",
        "sample_idx",
        "question",
        "response",
        "source",
        "difficulty",
        "finished",
    ]
    assert out.height == 8 and report.counts["kept trajectories"] == 8
    assert dict(report.dropped) == {"domain=code": 1, "no_teacher_turn": 1}
    per_q = out.group_by("question_id").agg(pl.col("sample_idx").sort())
    assert sorted(len(s) for s in per_q["sample_idx"]) == [2, 6]
    for samples in per_q["sample_idx"]:
        assert samples.to_list() == list(range(len(samples)))
    assert out.filter(~pl.col("finished")).height == 1
    assert (tmp_path / "math" / "README.md").exists()


def test_sample_idx_is_independent_of_shard_layout(tmp_path):
    rows = _rows()
    write_ot3(tmp_path / "a", [rows[:5], rows[5:]])
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    write_ot3(tmp_path / "b", [shuffled[:3], shuffled[3:7], shuffled[7:]])
    run_filter(tmp_path / "a", tmp_path / "out_a")
    run_filter(tmp_path / "b", tmp_path / "out_b")
    key = ["question_id", "sample_idx"]
    a = pl.read_parquet(tmp_path / "out_a" / "*.parquet").sort(key)
    b = pl.read_parquet(tmp_path / "out_b" / "*.parquet").sort(key)
    assert a.select(key + ["response"]).equals(b.select(key + ["response"]))


def test_domain_option_keeps_other_domains(tmp_path):
    write_ot3(tmp_path / "raw", [_rows()])
    report = run_filter(tmp_path / "raw", tmp_path / "out", domains=("math", "code"))
    assert report.counts["kept trajectories"] == 9


TAIL = 8192
FINISHED_CASES = {
    "closed": "<think>a</think>b",
    "cut_inside": "<think>abc",
    "no_tags": "plain text",
    "empty": "",
    "long_final_part": "<think>a</think>" + "é" * TAIL,
    "close_straddles_tail_edge": "<think>" + "x" * 10 + "</think>" + "y" * (TAIL - 4),
    "open_far_back_cut": "<think>" + "日" * TAIL,
    "close_far_back_without_open": "</think>" + "z" * (2 * TAIL),
    "open_after_close": "<think>a</think>b<think>c",
}


def test_finished_column_is_is_finished():
    """``filter_shard.finished`` looks in each trace's tail first; every shape agrees with the rule."""
    from offcurate.curate.answers.extract import is_finished
    from offcurate.curate.filter_shard import finished

    texts = list(FINISHED_CASES.values())
    for array in (pa.array(texts), pa.array(texts, pa.large_string()), pa.array(["pad", *texts]).slice(1)):
        got = dict(zip(FINISHED_CASES, finished(array).to_pylist()))
        assert got == {name: is_finished(text) for name, text in FINISHED_CASES.items()}


def test_response_digests_are_blake2b_of_the_utf8_bytes():
    import hashlib

    from offcurate.curate.filter_shard import response_digests

    texts = ["é" * 3000, "", "abc", "日本" * 700]
    want = [int.from_bytes(hashlib.blake2b(t.encode(), digest_size=8).digest(), "big") for t in texts]
    for array in (pa.array(texts), pa.array(texts, pa.large_string()), pa.array(["pad", *texts]).slice(1)):
        assert response_digests(array).tolist() == want
