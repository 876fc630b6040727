"""``offcurate eval`` on bad input: one line naming the file, row and column, exit code 2, no output."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_cli_errors import run_cli

from offcurate.curate.io.ids import question_id

GOOD_RESPONSES = [{"question_id": question_id("Q"), "sample_idx": 0, "response": "\\boxed{1}"}]


def jsonl(*rows):
    return lambda f: f.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows))


def parquet(rows):
    return lambda f: pq.write_table(pa.Table.from_pylist(rows), f)


GOOD = jsonl({"problem": "Q", "answer": 1})
# case -> (benchmark file name, how to write it, responses rows, message expected in the error)
CASES = {
    "no_question_column": (
        "b.jsonl",
        jsonl({"text": "Q", "answer": 1}),
        None,
        "missing column 'question' or",
    ),
    "no_gold_column": ("b.jsonl", jsonl({"problem": "Q", "level": 1}), None, "missing column 'answer'"),
    "null_answer": (
        "b.jsonl",
        jsonl({"problem": "Q", "answer": 1}, {"problem": "R"}),
        None,
        "line 2: column 'answer'",
    ),
    "no_box_in_solution": (
        "b.jsonl",
        jsonl({"problem": "Q", "solution": "\\boxed{1}"}, {"problem": "R", "solution": "it is 2"}),
        None,
        "line 2: column 'solution' has no \\boxed{} answer",
    ),
    "empty_question": (
        "b.jsonl",
        jsonl({"problem": "  ", "answer": 1}),
        None,
        "line 1: column 'problem' is empty",
    ),
    "bad_json": ("b.jsonl", jsonl({"problem": "Q", "answer": 1}, "{oops"), None, "line 2 is not valid JSON"),
    "not_an_object": ("b.jsonl", jsonl("[1, 2]"), None, "line 1 is not a JSON object"),
    "empty_benchmark": ("b.jsonl", jsonl(), None, "holds no problems"),
    "parquet_row": (
        "b.parquet",
        parquet([{"problem": "Q", "answer": "1"}, {"problem": "R", "answer": None}]),
        None,
        "row 2: column 'answer'",
    ),
    "csv_benchmark": (
        "b.csv",
        lambda f: f.write_text("problem,answer\n"),
        None,
        "a benchmark is a .jsonl file",
    ),
    "responses_without_response": (
        "b.jsonl",
        GOOD,
        [{"question_id": "x", "text": "t"}],
        "need columns 'response'",
    ),
    "sample_idx_as_string": (
        "b.jsonl",
        GOOD,
        [{"question_id": "x", "sample_idx": "0", "response": "r"}],
        "column 'sample_idx' has type string",
    ),
    "duplicate_response_rows": (
        "b.jsonl",
        GOOD,
        GOOD_RESPONSES * 2,
        f"question_id {question_id('Q')} has sample_idx 0 more than once",
    ),
    "null_question_id_in_responses": (
        "b.jsonl",
        GOOD,
        [*GOOD_RESPONSES, {"question_id": None, "sample_idx": 1, "response": "r"}],
        "null question_id in ",
    ),
    "conflicting_golds": (
        "b.jsonl",
        jsonl({"problem": "Q", "answer": 1}, {"problem": "R", "answer": 2}, {"problem": "Q", "answer": 3}),
        None,
        "the question 'Q' has conflicting golds '1' and '3'",
    ),
    "responses_match_nothing": (
        "b.jsonl",
        GOOD,
        [{"question_id": "x", "sample_idx": 0, "response": "r"}],
        "no response matches a problem of b",
    ),
}


@pytest.mark.parametrize("name, write, responses, message", list(CASES.values()), ids=list(CASES))
def test_bad_eval_input(tmp_path, monkeypatch, capsys, name, write, responses, message):
    bench = tmp_path / name
    write(bench)
    pq.write_table(pa.Table.from_pylist(responses or GOOD_RESPONSES), tmp_path / "responses.parquet")
    args = [
        "eval",
        "-b",
        str(bench),
        "--responses",
        str(tmp_path / "responses.parquet"),
        "-o",
        str(tmp_path / "out"),
    ]
    code, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    assert str(tmp_path) in err
    assert not (tmp_path / "out").exists()


def test_two_benchmarks_with_one_name(tmp_path, monkeypatch, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        GOOD(tmp_path / folder / "math500.jsonl")
    args = ["eval", "-b", str(tmp_path / "a" / "math500.jsonl"), "-b", str(tmp_path / "b" / "math500.jsonl")]
    code, err = run_cli(monkeypatch, capsys, *args, "--responses", str(tmp_path))
    assert code == 2 and "benchmark name 'math500'" in err


def test_quoted_pattern_reads_each_file_and_names_an_empty_match(tmp_path):
    """``-b 'DIR/*.jsonl'`` (what `offcurate experiment` prints for a data kind's own benchmarks)."""
    from offcurate.curate.io.errors import InputError
    from offcurate.eval.benchmarks import load_benchmarks

    for name in ("b", "a"):
        GOOD(tmp_path / f"{name}.jsonl")
    GOOD(tmp_path / "c.json")  # not matched
    assert [b.name for b in load_benchmarks([tmp_path / "*.jsonl"])] == ["a", "b"]
    with pytest.raises(InputError, match=r"nope\*\.jsonl: the pattern matches no file"):
        load_benchmarks([tmp_path / "nope*.jsonl"])


@pytest.mark.parametrize(
    "args, message",
    [
        pytest.param([], "give --benchmark FILE", id="nothing"),
        pytest.param(["-b", "x.jsonl"], "--responses DIR", id="no_responses"),
        pytest.param(["--compare", "A", "B", "-b", "x.jsonl"], "drop --benchmark", id="compare_and_score"),
        pytest.param(["--compare", "A"], "two or more eval output folders", id="compare_one_folder"),
        pytest.param(["A", "-b", "x.jsonl"], "unexpected argument 'A'", id="folder_without_compare"),
    ],
)
def test_eval_usage(monkeypatch, capsys, args, message):
    code, err = run_cli(monkeypatch, capsys, "eval", *args)
    assert code == 2 and message in err and "Traceback" not in err


def test_compare_needs_eval_outputs(tmp_path, monkeypatch, capsys):
    (tmp_path / "base").mkdir()
    code, err = run_cli(
        monkeypatch, capsys, "eval", "--compare", str(tmp_path / "base"), str(tmp_path / "nope")
    )
    assert code == 2 and f"{tmp_path / 'base'}: no summary.parquet inside" in err
