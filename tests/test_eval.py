"""``offcurate eval``: gold loading, pass@1/maj@k on hand-written problems, the CLI end to end, --compare."""

import json
import sys

import matplotlib.image
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offcurate.cli import main
from offcurate.curate.answers.equivalence import Verifier
from offcurate.curate.answers.scoring import ScoreProblem
from offcurate.curate.io.ids import question_id
from offcurate.eval.benchmarks import gold_text, load_benchmark

SLOW = "\\frac{" * 30 + "1" + "}{2}" * 30  # math-verify needs many seconds on it: times out


def cli(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


@pytest.mark.parametrize(
    "value, expected",
    [(204, "204"), (27.0, "27"), (0.5, "0.5"), (1e-05, "0.00001"), (" \\frac12 ", "\\frac12"), ("073", "073")]
    + [(None, None), ("", None), (True, None), (float("nan"), None), ([1], None)],
)
def test_gold_text(value, expected):
    assert gold_text(value) == expected


def test_load_benchmark_jsonl_and_parquet(tmp_path):
    rows = [
        {"problem": "P1", "answer": 27.0},
        {"problem": "P2", "answer": 204},
        {"problem": "P3", "answer": "x"},
    ]
    (tmp_path / "amc.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n\n")
    amc = load_benchmark(tmp_path / "amc.jsonl")
    assert amc.name == "amc"
    assert amc.problems["gold"].to_list() == ["27", "204", "x"]
    assert amc.problems["question_id"].to_list() == [question_id(q) for q in ("P1", "P2", "P3")]
    solutions = {"question": ["Q"], "solution": ["so $\\boxed{1}$ then $\\boxed{\\frac{3}{4}}$ cm"]}
    pq.write_table(pa.table(solutions), tmp_path / "minerva.parquet")
    minerva = load_benchmark(tmp_path / "minerva.parquet")
    assert (minerva.name, minerva.problems["gold"].to_list()) == ("minerva", ["\\frac{3}{4}"])


@pytest.mark.parametrize(
    "gold, answers, correct, status, majority, maj",
    [
        pytest.param(
            "\\frac{1}{2}", ["\\frac12", "0.5", "1/2", "2"], [1, 1, 1, 0], "ok", "\\frac12", 1.0, id="forms"
        ),
        # two classes of two: the first seen ({1/2, 0.5}) is the majority, although 3 is also written twice
        pytest.param("3", ["1/2", "3", "0.5", "3"], [0, 1, 0, 1], "tie", "1/2", 0.0, id="tie_first_seen"),
        pytest.param("3", ["3", "1/2", "0.5", "3"], [1, 0, 0, 1], "tie", "3", 1.0, id="tie_other_order"),
        pytest.param("5", [None, None, None, None], [0, 0, 0, 0], "no_answer", None, 0.0, id="no_answer"),
        pytest.param("5", [None, "5", "6", "6.0"], [0, 1, 0, 0], "ok", "6", 0.0, id="wrong_majority"),
        # the timed-out answer is wrong and only equal to its copies: it still wins the vote
        pytest.param("2", [SLOW, "2", SLOW, None], [0, 1, 0, 0], "ok", SLOW, 0.0, id="pathological_majority"),
        pytest.param("2", ["2", SLOW, "4/2", SLOW], [1, 0, 1, 0], "tie", "2", 1.0, id="pathological_tie"),
    ],
)
def test_score_problem(gold, answers, correct, status, majority, maj):
    score = ScoreProblem().run([gold, *answers], Verifier(timeout=0.5))
    assert score.correct == [bool(c) for c in correct]
    assert (score.status, score.majority_answer, score.maj_at_k) == (status, majority, maj)
    assert score.pass_at_1 == sum(correct) / len(correct)
    assert score.pathological == answers.count(SLOW)


def test_fallback_is_string_identity():
    """What a problem gets when the watchdog kills its worker: no math, identical strings only."""
    score = ScoreProblem().fallback(["2", "2", "4/2", "4/2", "2.0"])
    assert score.correct == [True, False, False, False]
    assert (score.status, score.majority_answer, score.maj_at_k) == ("ok", "4/2", 0.0)


def wrap(final: str) -> str:
    return f"<think>\nLet me work it out.\n</think>\n\n{final}"


TRUNCATED = "<think>\nMaybe $\\boxed{2}$... let me check again"
# benchmark "toy" (JSONL, numeric golds): question -> (gold as stored, responses in sample order)
TOY = {
    "What is one half?": (
        "\\frac{1}{2}",
        [wrap(f"$\\boxed{{{a}}}$") for a in ("\\frac12", "0.5", "1/2", "2")],
    ),
    "Tie question": (3, [wrap(f"The answer is $\\boxed{{{a}}}$.") for a in ("1/2", "3", "0.5", "3")]),
    "Nobody answers": (27.0, [wrap("I do not know."), wrap("Hmm."), wrap("No idea."), TRUNCATED]),
    "Pathological": (
        2,
        [wrap(f"\\boxed{{{SLOW}}}"), wrap("\\boxed{2}"), wrap(f"\\boxed{{{SLOW}}}"), TRUNCATED],
    ),
    "Nobody sampled this one": (9, []),
}
MINERVA = {"Three quarters?": ("so $\\boxed{\\dfrac{3}{4}}$ cm", ["0.75", "3/4", "\\frac34", "1"])}


def write_inputs(root):
    root.mkdir()
    toy = [{"problem": q, "answer": gold} for q, (gold, _) in TOY.items()]
    (root / "toy.jsonl").write_text("\n".join(json.dumps(r) for r in toy) + "\n")
    minerva = {"problem": list(MINERVA), "solution": [s for s, _ in MINERVA.values()]}
    pq.write_table(pa.table(minerva), root / "minerva_like.parquet")
    rows = [
        {"question": q, "sample_idx": i, "response": r}
        for q, (_, responses) in TOY.items()
        for i, r in enumerate(responses)
    ]
    rows += [
        {"question": q, "sample_idx": i, "response": wrap(f"\\boxed{{{a}}}")}
        for q, (_, answers) in MINERVA.items()
        for i, a in enumerate(answers)
    ]
    rows += [
        {"question": "Not in any benchmark", "sample_idx": i, "response": wrap("\\boxed{1}")} for i in (0, 1)
    ]
    for row in rows:
        reason = "length" if row["response"] == TRUNCATED else "stop"  # cut where the generator stopped it
        row.update(question_id=question_id(row["question"]), benchmark="?", finish_reason=reason)
    rows = rows[::-1]  # sample order must come from sample_idx, not from the row order
    (root / "responses").mkdir()
    for part in (0, 1):
        pq.write_table(pa.Table.from_pylist(rows[part::2]), root / "responses" / f"part-{part}.parquet")


def test_eval_cli_end_to_end(tmp_path, monkeypatch):
    write_inputs(tmp_path / "in")
    args = [
        "eval",
        "-b",
        str(tmp_path / "in" / "toy.jsonl"),
        "-b",
        str(tmp_path / "in" / "minerva_like.parquet"),
    ]
    args += ["--responses", str(tmp_path / "in" / "responses"), "-o", str(tmp_path / "out")]
    assert cli(monkeypatch, *args, "--workers", "1", "--timeout", "0.5") == 0

    results = pl.read_parquet(tmp_path / "out" / "results.parquet")
    assert results["benchmark"].to_list() == ["toy"] * 5 + ["minerva_like"]
    assert results["question"].to_list() == [*TOY, *MINERVA]
    assert results["gold"].to_list() == ["\\frac{1}{2}", "3", "27", "2", "9", "\\dfrac{3}{4}"]
    assert results["samples"].to_list() == [4, 4, 4, 4, 0, 4]
    assert results["status"].to_list() == ["ok", "tie", "no_answer", "ok", "no_responses", "ok"]
    assert results["pass_at_1"].to_list() == [0.75, 0.5, 0.0, 0.25, None, 0.75]
    assert results["maj_at_k"].to_list() == [1.0, 0.0, 0.0, 0.0, None, 1.0]
    assert results["majority_answer"].to_list() == ["\\frac12", "1/2", None, SLOW, None, "0.75"]
    assert results["answers"][1].to_list() == ["1/2", "3", "0.5", "3"]
    assert results["correct"][3].to_list() == [False, True, False, False]
    assert results["finished"][2].to_list() == [True, True, True, False]
    assert results["timeouts"].to_list() == [0, 0, 0, 2, 0, 0]

    summary = pl.read_parquet(tmp_path / "out" / "summary.parquet")
    toy, minerva = summary.to_dicts()
    assert (toy["benchmark"], toy["problems"], toy["scored"], toy["missing"], toy["k"]) == ("toy", 5, 4, 1, 4)
    assert toy["pass_at_1"] == pytest.approx((0.75 + 0.5 + 0 + 0.25) / 4)
    assert toy["maj_at_k"] == pytest.approx(1 / 4)
    assert (toy["samples"], toy["no_answer"], toy["truncated"], toy["timeouts"]) == (16, 5, 2, 2)
    assert (minerva["problems"], minerva["pass_at_1"], minerva["maj_at_k"]) == (1, 0.75, 1.0)
    # the chain checks: 2 of toy's 16 samples hit the token limit, 5 have no answer the extractor reads
    assert (toy["end_of_turn"], toy["answered"]) == (14 / 16, 11 / 16)
    assert (minerva["end_of_turn"], minerva["answered"]) == (1.0, 1.0)
    assert results["finish_reason"][2].to_list() == ["stop", "stop", "stop", "length"]
    # pass@1's 95% interval over toy's 4 scored problems (0.75, 0.5, 0, 0.25): 1.96 * sd / sqrt(4)
    assert toy["pass_at_1_ci95"] == pytest.approx(1.959964 * (0.3125 / 3) ** 0.5 / 2)
    assert minerva["pass_at_1_ci95"] is None  # one problem: no spread to measure
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["benchmarks"] == summary.to_dicts()
    assert "results.parquet" in (tmp_path / "out" / "README.md").read_text()


def write_summary(folder, rows):
    folder.mkdir()
    names = ("benchmark", "k", "pass_at_1", "maj_at_k")
    pl.DataFrame([dict(zip(names, r)) for r in rows]).write_parquet(folder / "summary.parquet")


def test_compare_deltas_and_radar(tmp_path, monkeypatch, capsys):
    write_summary(
        tmp_path / "base", [("math500", 8, 0.25, 0.5), ("aime24", 8, 0.5, 0.5), ("old", 8, 0.1, 0.1)]
    )
    write_summary(tmp_path / "grpo", [("aime24", 8, 0.75, 1.0), ("math500", 8, 0.5, 0.25), ("new", 4, 1, 1)])
    args = ["eval", "--compare", str(tmp_path / "base"), str(tmp_path / "grpo"), "-o", str(tmp_path / "cmp")]
    assert cli(monkeypatch, *args) == 0
    table = pl.read_parquet(tmp_path / "cmp" / "compare.parquet")
    assert table.select("benchmark", "model").rows() == [
        ("math500", "base"),
        ("math500", "grpo"),
        ("aime24", "base"),
        ("aime24", "grpo"),
    ]
    trained = table.filter(pl.col("model") == "grpo")
    assert trained["pass_at_1_delta"].to_list() == [0.25, 0.25]
    assert trained["maj_at_k_delta"].to_list() == [-0.25, 0.5]
    assert trained["pass_at_1"].to_list() == [0.5, 0.75]
    assert table.filter(pl.col("model") == "base")["pass_at_1_delta"].to_list() == [None, None]
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["rows"] == table.to_dicts()
    png = tmp_path / "cmp" / "radar.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width, _ = matplotlib.image.imread(png).shape
    assert width > height > 300
    err = capsys.readouterr().err
    assert "+25.0" in err and "-25.0" in err and "+50.0" in err
    assert "only in base" in err and "only in grpo" in err


def test_compare_many_models_against_the_first(tmp_path, monkeypatch, capsys):
    """The base and three arms: one row per benchmark and model, every delta against the base, a radar
    with a polygon per model; summaries without the interval and chain-check columns still compare."""
    benchmarks = ("math500", "aime24", "amc23")
    scores = {"base": 0.2, "bias": 0.5, "no-bias": 0.3, "sft": 0.1}
    for name, score in scores.items():
        write_summary(tmp_path / name, [(b, 4, score + i / 10, score) for i, b in enumerate(benchmarks)])
    folders = [str(tmp_path / name) for name in scores]
    assert cli(monkeypatch, "eval", "--compare", *folders, "-o", str(tmp_path / "cmp")) == 0
    table = pl.read_parquet(tmp_path / "cmp" / "compare.parquet")
    assert table.height == 3 * 4
    assert table.filter(pl.col("benchmark") == "amc23")["model"].to_list() == list(scores)
    deltas = table.filter(pl.col("benchmark") == "aime24")["maj_at_k_delta"].to_list()
    assert deltas[0] is None and deltas[1:] == pytest.approx([0.3, 0.1, -0.1])
    assert table["end_of_turn"].null_count() == table.height  # not in these old-style summaries
    height, width, _ = matplotlib.image.imread(tmp_path / "cmp" / "radar.png").shape
    assert width > height > 300
    err = capsys.readouterr().err
    assert "models compared" in err and "mean pass@1 delta, sft (points)" in err
