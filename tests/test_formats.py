"""``filter --format``: each dataset layout becomes the trajectory layout (plus ``gold``), awkward rows
dropped and counted, a wrong column named in one line; every layout through the one engine (bytes equal
for any worker count, ``sample_idx`` by content for any shard order); each votes into a folder ``datasets``
opens, its text copied."""

import hashlib
import random

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from builders import ot3_row, trace, write_ot3
from gold_builders import (
    Problem,
    answer_trace,
    deepmath_table,
    openmath_table,
    openr1_table,
    write_layout,
)

from offcurate.curate.filter import OUTPUT_SCHEMA, run_filter
from offcurate.curate.filter_shard import ROW_GROUP_ROWS
from offcurate.curate.formats import get_format
from offcurate.curate.formats.canonical import gold_text
from offcurate.curate.gold import ACCURACY
from offcurate.curate.io.errors import InputError
from offcurate.curate.io.ids import question_id


def _filtered(tmp_path, table, fmt, **mapping) -> tuple[pl.DataFrame, dict]:
    write_layout(tmp_path / "raw", table)
    report = run_filter(tmp_path / "raw", tmp_path / "math", fmt=fmt, mapping=mapping or None)
    frame = pl.read_parquet(tmp_path / "math" / "*.parquet").sort("question", "sample_idx")
    return frame, {**report.counts, **{f"dropped: {k}": v for k, v in report.dropped.items()}}


def test_openr1_one_row_per_generation_with_gold_and_verdicts(tmp_path):
    problems = [
        Problem("Q1: what is 1+1?", "2", ["2", "3", "2"], verdicts=[True, False, True]),
        Problem("Q2: one trace", "5", ["5"], verdicts=[True]),
        Problem("Q3: no gold", None, ["4", "4"], verdicts=[None, None]),
        Problem("Q4: verdicts do not line up", "7", ["7", "7"], verdicts=[True]),
        Problem("Q5: null and blank traces", "1", [], extra={"generations": [answer_trace("1"), None, "  "]}),
        Problem("Q6: no generations", "1", [], extra={"generations": []}),
    ]
    frame, counts = _filtered(tmp_path, openr1_table(problems), "openr1-math")
    assert frame.columns == [*OUTPUT_SCHEMA.names, "gold", "dataset_verdict"]
    by_question = {q: g for (q,), g in frame.group_by("question")}
    assert sorted(by_question) == [p.text for p in problems[:5]]
    q1 = by_question["Q1: what is 1+1?"].sort("sample_idx")
    assert q1["gold"].to_list() == ["2", "2", "2"]
    assert sorted(zip(q1["response"], q1["dataset_verdict"])) == sorted(
        zip(problems[0].traces(), [True, False, True])
    )
    assert by_question["Q3: no gold"]["gold"].to_list() == [None, None]
    assert by_question["Q4: verdicts do not line up"]["dataset_verdict"].to_list() == [None, None]
    assert by_question["Q5: null and blank traces"].height == 1
    assert frame["question_id"].to_list() == [question_id(q) for q in frame["question"]]
    assert frame["difficulty"].null_count() == frame.height and frame["finished"].all()
    assert counts["dropped: empty_response"] == 2 and counts["dropped: problem without generations"] == 1
    assert (counts["kept trajectories"], counts["questions"], counts["questions with a gold"]) == (9, 5, 4)


def _omr(problem: str, solution: str | None, gold: str, kind: str = "has_answer_extracted", **extra) -> dict:
    return {
        "problem": problem,
        "generated_solution": solution,
        "expected_answer": gold,
        "problem_type": kind,
        **extra,
    }


def test_openmathreasoning_keeps_only_extracted_answers_as_gold(tmp_path):
    rows = [
        _omr("P1", answer_trace("3"), "3"),
        _omr("P1", answer_trace("4"), "3"),
        _omr("P2", answer_trace("8"), "8", "converted_proof"),
        _omr("P3", answer_trace("9"), "9", "no_answer_extracted"),
        _omr("P1", "Judgment: 0", "3", inference_mode="genselect"),
        _omr("P4", None, "1"),
    ]
    frame, counts = _filtered(tmp_path, openmath_table(rows), "openmathreasoning")
    assert frame.select("question", "gold").rows() == [("P1", "3"), ("P1", "3"), ("P2", None), ("P3", None)]
    assert frame["source"].unique().to_list() == ["aops_c4_high_school_math"]
    assert counts["dropped: inference_mode=genselect"] == 1 and counts["dropped: empty_response"] == 1
    assert counts["gold withheld (problem_type=converted_proof: expected_answer is a vote)"] == 1
    assert counts["gold withheld (problem_type=no_answer_extracted: expected_answer is a vote)"] == 1


def test_deepmath_three_solutions_per_row_difficulty_floored(tmp_path):
    solutions = [
        [answer_trace("0.5"), answer_trace("1/2"), answer_trace("2")],
        [answer_trace("4"), None, "4"],
    ]
    rows = [
        {"question": q, "final_answer": gold, "difficulty": level, "topic": topic}
        | {f"r1_solution_{i + 1}": text for i, text in enumerate(texts)}
        for q, gold, level, topic, texts in (
            ("D1", "\\frac{1}{2}", 6.5, "Algebra", solutions[0]),
            ("D2", "4", 3.0, "Geometry", solutions[1]),
            ("D3", "5", float("nan"), "Geometry", solutions[1]),  # no level: null, not an error
        )
    ]
    frame, counts = _filtered(tmp_path, deepmath_table(rows), "deepmath")
    assert frame.group_by("question").agg(
        pl.len(), pl.col("difficulty").first(), pl.col("source").first()
    ).sort("question").rows() == [
        ("D1", 3, 6, "Algebra"), ("D2", 2, 3, "Geometry"), ("D3", 2, None, "Geometry")
    ]  # fmt: skip
    assert set(frame["gold"]) == {"\\frac{1}{2}", "4", "5"}
    assert counts["dropped: empty_response"] == 2


@pytest.mark.parametrize(
    "response, gold_type, gold_values, expected_golds",
    [
        pytest.param("string", pa.int64(), [27, 27, 5], ["27", "27", "5"], id="string_traces_int_gold"),
        pytest.param("list", pa.float64(), [27.0, 0.5], ["27", "27", "0.5"], id="list_traces_float_gold"),
    ],
)
def test_columns_mapping(tmp_path, response, gold_type, gold_values, expected_golds):
    if response == "string":
        table = pa.table(
            {
                "prompt": ["A", "A", "B"],
                "completion": [answer_trace("27"), answer_trace("26"), answer_trace("5")],
                "ref": pa.array(gold_values, gold_type),
                "level": pa.array([2.7, 2.7, 9.0]),
            }
        )
    else:
        table = pa.table(
            {
                "prompt": ["A", "B"],
                "completion": [[answer_trace("27"), answer_trace("26")], [answer_trace("0.5")]],
                "ref": pa.array(gold_values, gold_type),
                "level": pa.array([2.7, 9.0]),  # floored: 2, 2 (both traces of A), 9
            }
        )
    frame, counts = _filtered(
        tmp_path, table, "columns", question="prompt", response="completion", gold="ref", difficulty="level"
    )
    assert frame["gold"].to_list() == expected_golds
    assert frame["difficulty"].to_list() == [2, 2, 9]
    assert counts["format"] == "columns"


def test_columns_without_gold_is_exactly_the_openthoughts3_layout(tmp_path):
    table = pa.table({"q": ["A", "A"], "r": [answer_trace("1"), answer_trace("2")]})
    frame, _ = _filtered(tmp_path, table, "columns", question="q", response="r")
    assert pq.read_schema(next((tmp_path / "math").glob("*.parquet"))).equals(
        OUTPUT_SCHEMA, check_metadata=False
    )
    assert frame.height == 2


@pytest.mark.parametrize(
    "fmt, table, message",
    [
        pytest.param(
            "openr1-math",
            pa.table({"problem": ["q"], "generations": [["t"]], "source": ["s"]}),
            "--format openr1-math (open-r1/OpenR1-Math-220k): has no column 'answer'",
            id="openr1_missing_answer",
        ),
        pytest.param(
            "openr1-math",
            pa.table({"problem": ["q"], "answer": ["1"], "generations": ["t"], "source": ["s"]}),
            "--format openr1-math (open-r1/OpenR1-Math-220k): column 'generations' has type string, "
            "expected list<string>",
            id="openr1_generations_not_a_list",
        ),
        pytest.param(
            "deepmath",
            pa.table({"question": ["q"], "final_answer": ["1"], "r1_solution_1": ["a"],
                      "r1_solution_2": ["b"], "r1_solution_3": ["c"], "difficulty": ["hard"]}),
            "--format deepmath (zwhe99/DeepMath-103K): column 'difficulty' has type string, expected a",
            id="deepmath_difficulty_text",
        ),
        pytest.param(
            "deepmath",
            openr1_table([Problem("q", "1", ["1"])]),
            "has no column 'question'",
            id="openr1_file_given_as_deepmath",
        ),
    ],
)  # fmt: skip
def test_a_missing_or_mistyped_column_is_one_line(tmp_path, fmt, table, message):
    path = write_layout(tmp_path / "raw", table) / "train-00000-of-00001.parquet"
    with pytest.raises(InputError) as err:
        run_filter(tmp_path / "raw", tmp_path / "math", fmt=fmt)
    text = str(err.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text
    if fmt == "deepmath" and "answer" in table.column_names:
        assert text.endswith("its columns fit --format openr1-math")
    assert not (tmp_path / "math").exists()


@pytest.mark.parametrize(
    "fmt, mapping, message",
    [
        pytest.param(
            "columns", {"question": "q"}, "--format columns needs --response-col", id="no_response_col"
        ),
        pytest.param("deepmath", {"gold": "g"}, "--gold-col: only --format columns", id="mapping_elsewhere"),
        pytest.param("alpaca", None, "--format must be one of openthoughts3, openr1-math", id="unknown"),
    ],
)
def test_bad_format_options(fmt, mapping, message):
    with pytest.raises(InputError, match=message):
        get_format(fmt, mapping)


def test_domain_is_an_openthoughts3_option(tmp_path):
    write_layout(tmp_path / "raw", openr1_table([Problem("q", "1", ["1"])]))
    with pytest.raises(InputError, match="--domain applies to --format openthoughts3"):
        run_filter(tmp_path / "raw", tmp_path / "math", domains=("code",), fmt="openr1-math")


def test_openthoughts3_is_untouched_by_the_dispatch(tmp_path):
    write_ot3(
        tmp_path / "raw", [[ot3_row("What is 2+2?", trace("4")), ot3_row("x", trace("1"), domain="code")]]
    )
    run_filter(tmp_path / "raw", tmp_path / "a")
    run_filter(tmp_path / "raw", tmp_path / "b", fmt="openthoughts3")
    files = [sorted((tmp_path / name).glob("*.parquet")) for name in "ab"]
    assert [f.read_bytes() for f in files[0]] == [f.read_bytes() for f in files[1]]


@pytest.mark.parametrize(
    "value, text",
    [(27, "27"), (27.0, "27"), (0.5, "0.5"), (1e-05, "0.00001"), (" x=3 ", "x=3"), ("", None), (None, None),
     (float("nan"), None), (True, None)],
)  # fmt: skip
def test_gold_text(value, text):
    assert gold_text(value) == text


def _stand_in(fmt: str) -> tuple[pa.Table, dict]:
    """A small stand-in of each layout with its awkward rows, and the mapping of --format columns."""
    if fmt == "openmathreasoning":
        rows = [_omr("M1", answer_trace(a), "12") for a in ("12", "12", "13")]
        rows += [_omr("M2", answer_trace("\\frac{1}{2}"), "\\frac{1}{", "has_answer_extracted")]  # unreadable
        rows += [_omr("M3", answer_trace("7"), "7", "converted_proof"), _omr("M4", None, "1")]
        return openmath_table(rows), {}
    if fmt == "deepmath":
        rows = [
            {"question": "D1", "final_answer": "4", "difficulty": 5.5, "topic": "Algebra",
             "r1_solution_1": answer_trace("4"), "r1_solution_2": answer_trace(None), "r1_solution_3": None},
            {"question": "D2", "final_answer": None, "difficulty": None, "topic": None,
             "r1_solution_1": answer_trace("2"), "r1_solution_2": answer_trace("3"),
             "r1_solution_3": answer_trace("3")},
        ]  # fmt: skip
        return deepmath_table(rows), {}
    if fmt == "columns-gold":
        table = pa.table(
            {"q": ["C1", "C1", "C2"], "r": [answer_trace("1"), answer_trace("1"), None], "g": [1, 1, 2]}
        )
        return table, {"question": "q", "response": "r", "gold": "g"}
    table = pa.table({"q": ["C1", "C2"], "r": [[answer_trace("1"), None, answer_trace("2")], []]})
    return table, {"question": "q", "response": "r"}


LAYOUTS = {  # vote output layout -> the formats filtered into it (one vote run each: it costs ~2 s)
    "gold": ["openmathreasoning", "deepmath", "columns-gold"],
    "no_gold": ["columns-list"],
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_each_format_votes_into_a_folder_datasets_opens(tmp_path, layout):
    """Each format's filter output (one folder each, under one parent that ``vote`` reads whole) votes
    into a folder that ``datasets`` opens, its text copied, with each format's questions labeled."""
    from cards import open_every_config

    from offcurate.curate.vote import COPIED, run_vote

    for fmt in LAYOUTS[layout]:
        table, mapping = _stand_in(fmt)
        write_layout(tmp_path / "raw" / fmt, table)
        name = "columns" if fmt.startswith("columns") else fmt
        run_filter(tmp_path / "raw" / fmt, tmp_path / "math" / fmt, fmt=name, mapping=mapping or None)
    report = run_vote(tmp_path / "math", tmp_path / "voted", workers=1)
    rows = open_every_config(tmp_path / "voted", tmp_path / "cache")  # datasets and polars agree
    assert rows == {"trajectories": report.counts["trajectories"], "questions": report.counts["questions"]}
    columns = pq.read_schema(next((tmp_path / "voted" / "trajectories").glob("*.parquet"))).names
    assert ("gold_reward" in columns) == (layout == "gold")
    assert report.counts[COPIED] == report.counts["output shards"] == len(LAYOUTS[layout])  # not re-encoded
    # the summary's accuracy tables: per teacher pass rate, and per difficulty (DeepMath has one)
    assert len(report.tables) == {"gold": 2, "no_gold": 0}[layout]
    questions = pl.read_parquet(tmp_path / "voted" / "questions" / "*.parquet")
    if layout == "gold":  # M1: 12 12 13 against 12; D1: 4 (its other traces unanswered or dropped); C1: 1 1
        got = {q: (s, a) for q, s, a in questions.select("question", "gold_status", "gold_agrees").rows()}
        assert got == {
            "M1": ("ok", True), "M2": ("unreadable", None), "M3": ("missing", None),
            "D1": ("ok", True), "D2": ("missing", None), "C1": ("ok", True),
        }  # fmt: skip
        assert report.counts[ACCURACY] == 1.0 and report.counts["  ... without a gold"] == 2  # M3 withheld
        assert report.counts["  ... gold unreadable (math-verify reads no math)"] == 1
    else:  # C1: 1, 2 and a null trace; C2: an empty list
        assert questions.select("question", "status").rows() == [("C1", "tie")]


def test_cli_filter_format_columns(tmp_path, capsys):
    import sys

    from offcurate.cli import main

    write_layout(tmp_path / "raw", pa.table({"q": ["A"], "r": [answer_trace("1")], "g": ["1"]}))

    def cli(*args) -> int:
        argv, sys.argv = sys.argv, ["offcurate", "filter", "-i", str(tmp_path / "raw"), *map(str, args)]
        try:
            with pytest.raises(SystemExit) as done:
                main()
        finally:
            sys.argv = argv
        return done.value.code

    assert cli("-o", tmp_path / "a", "--format", "columns", "--question-col", "q", "--response-col", "r",
               "--gold-col", "g") == 0  # fmt: skip
    assert pl.read_parquet(tmp_path / "a" / "*.parquet")["gold"].to_list() == ["1"]
    assert cli("-o", tmp_path / "b", "--format", "columns", "--question-col", "q", "--response-col", "x") == 2
    assert "--format columns (a column mapping): has no column 'x'" in capsys.readouterr().err
    assert cli("-o", tmp_path / "c", "--question-col", "q") == 2
    assert "--question-col: only --format columns takes a column mapping" in capsys.readouterr().err


def _shuffled_corpus(fmt: str, rng: random.Random) -> list[dict]:
    """Raw rows of ``fmt`` for 70 questions x 12 traces, shuffled: identical traces (each kept, ranks
    tie-broken), whitespace variants of a question (one id), unusable traces, and for OpenR1 a question's
    traces spread over several rows (as in its two configs) with their verdicts."""
    rows = []
    for q in range(70):
        gold = None if q % 7 == 0 else str(q)
        traces = [answer_trace(str(rng.randint(0, 3)), f"q{q} t{t}") for t in range(11)]
        traces += [rng.choice(traces)]  # an identical trajectory
        traces[q % 12] = rng.choice([None, " \n", traces[q % 12]])  # unusable, sometimes
        asked = [f"Problem {q}:  what is it?" if t % 3 else f"Problem {q}: what is it?" for t in range(12)]
        if fmt == "openmathreasoning":
            kinds = ["has_answer_extracted", "converted_proof"]
            rows += [_omr(a, t, gold, kinds[q % 5 == 0]) for a, t in zip(asked, traces)]
            rows += [_omr(asked[0], "Judgment: 1", gold, inference_mode="genselect")]
        else:
            for start in range(0, 12, 4):
                part = traces[start : start + 4]
                verdicts = [t is not None and rng.random() < 0.5 for t in part]
                problem = Problem(asked[start], gold, [], verdicts=verdicts, extra={"generations": part})
                rows += openr1_table([problem]).to_pylist()
    rng.shuffle(rows)
    return rows


def _digest(text: str) -> bytes:
    return hashlib.blake2b(text.encode(), digest_size=8).digest()


@pytest.mark.parametrize("fmt", ["openmathreasoning", "openr1-math"])
def test_sample_idx_is_content_ranked_for_any_workers_and_shard_order(tmp_path, fmt):
    """Every format goes through the one engine: the output is byte for byte the same for 1 and 3
    workers; each trace's ``sample_idx`` (its rank by response digest among its question's traces) is the
    same for another shard order and split, and so are the rows with their extra columns."""
    rows = _shuffled_corpus(fmt, random.Random(7))
    schema = openmath_table([]).schema if fmt == "openmathreasoning" else openr1_table([]).schema
    table = pa.Table.from_pylist(rows, schema)
    cut = len(rows) * 3 // 4  # the first shard keeps more than a row group: its text is spliced in two
    write_layout(tmp_path / "a", table.slice(0, cut), table.slice(cut, 20), table.slice(cut + 20))
    backwards = pa.Table.from_pylist(rows[::-1], schema)
    write_layout(tmp_path / "b", backwards.slice(0, 37), backwards.slice(37))
    reports = {
        name: run_filter(tmp_path / raw, tmp_path / name, fmt=fmt, workers=workers)
        for name, raw, workers in (("one", "a", 1), ("three", "a", 3), ("other_order", "b", 2))
    }
    files = {name: sorted((tmp_path / name).glob("*.parquet")) for name in reports}
    assert [f.read_bytes() for f in files["one"]] == [f.read_bytes() for f in files["three"]]
    assert pq.ParquetFile(files["one"][0]).metadata.num_row_groups == 2
    one, three, other = (reports[name] for name in ("one", "three", "other_order"))
    assert one.counts == three.counts and one.dropped == three.dropped == other.dropped
    golds = {"openmathreasoning": 48, "openr1-math": 60}[fmt]  # every 7th has none; OMR: every 5th withheld
    assert (one.counts["questions"], one.counts["questions with a gold"]) == (70, golds)

    frames = {name: pl.read_parquet(tmp_path / name / "*.parquet") for name in ("one", "other_order")}
    ranked = ["question_id", "sample_idx", "response"]  # identical traces: which is which is positional
    rest = [c for c in frames["one"].columns if c not in ("question", "sample_idx")]  # question: first seen
    for key in (ranked, rest):
        assert frames["one"].select(key).sort(key).equals(frames["other_order"].select(key).sort(key))
    traces = frames["one"].sort("question_id", "sample_idx")
    for (qid,), group in traces.group_by("question_id"):
        assert group["sample_idx"].to_list() == list(range(group.height))
        digests = [_digest(r) for r in group["response"]]
        assert digests == sorted(digests), qid
    assert traces.height > ROW_GROUP_ROWS
