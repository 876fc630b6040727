"""The toy task's data: OpenThoughts3's raw layout, known golds, plausible wrong traces, disjoint splits.

    python -m pytest tests/test_toy_data.py -q

Answers are read with vote's own extractor, so a trace the pipeline would read differently fails here.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter

import pyarrow.parquet as pq
import pytest

from offcurate.curate.answers.extract import extract_answer
from offcurate.data.toy import (
    RAW_SCHEMA,
    ToySpec,
    draw_terms,
    right_trace,
    running,
    write_toy_data,
    wrong_trace,
)

SMALL = ToySpec(
    train_per_skill=6, warmup_per_skill=20, bench_per_skill=5, trained_bench=4, warmup_long_share=0.0
)
LINE = re.compile(r"^(-?\d+)([+-])(\d)=(-?\d+)$")


def _lines(trace: str) -> list[tuple[int, str, int, int]]:
    thinking = trace.split("</think>")[0]
    return [
        tuple(int(x) if x not in "+-" else x for x in LINE.match(s).groups())
        for s in thinking.split("\n")
        if LINE.match(s)
    ]


def _answer(trace: str) -> int:
    answer, finished = extract_answer(trace)
    assert finished and answer is not None, trace
    return int(answer)


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    out = tmp_path_factory.mktemp("toy")
    write_toy_data(out, seed=3, spec=SMALL)
    return out


def test_raw_layout_is_openthoughts3s(toy):
    table = pq.read_table(toy / "raw")
    assert table.schema.equals(RAW_SCHEMA)
    rows = table.to_pylist()
    assert len(rows) == 2 * SMALL.train_per_skill * SMALL.traces
    assert {r["domain"] for r in rows} == {"math"}
    for r in rows:
        human, gpt = r["conversations"]
        assert (human["from"], gpt["from"]) == ("human", "gpt")
        assert gpt["value"].startswith("<think>\n") and "\n</think>\n\n" in gpt["value"]
    per_question = Counter(r["conversations"][0]["value"] for r in rows)
    assert set(per_question.values()) == {SMALL.traces}


def _gold(question: str) -> int:
    """The gold worked out from the question's own number, independently of data/toy.py."""
    digits = [int(d) for d in re.search(r"\d+", question).group()]
    if "alternating" in question:
        return sum(d if i % 2 == 0 else -d for i, d in enumerate(digits))
    return sum(digits)


def test_golds_and_teacher_groups(toy):
    """sum: all traces right (all-positive); signed: min_wrong..max_wrong wrong, the majority is the gold."""
    traces: dict[str, list[int]] = {}
    for r in pq.read_table(toy / "raw").to_pylist():
        traces.setdefault(r["conversations"][0]["value"], []).append(_answer(r["conversations"][1]["value"]))
    assert len(traces) == 2 * SMALL.train_per_skill
    for question, answers in traces.items():
        gold = _gold(question)
        wrong = sum(a != gold for a in answers)
        if "alternating" in question:
            assert SMALL.min_wrong <= wrong <= SMALL.max_wrong, question
            assert Counter(answers).most_common(1)[0][0] == gold
        else:
            assert wrong == 0, question


def test_trained_sum_benchmark_is_rollouts_first_questions(toy):
    """benchmarks/trained-sum.jsonl: raw/'s sum questions, first by question id (as `rollout --limit`)."""
    from offcurate.curate.io.ids import question_id

    rows = [json.loads(line) for line in (toy / "benchmarks" / "trained-sum.jsonl").read_text().splitlines()]
    raw = {r["conversations"][0]["value"] for r in pq.read_table(toy / "raw").to_pylist()}
    sums = sorted((q for q in raw if "alternating" not in q), key=question_id)
    assert [r["question"] for r in rows] == sums[: SMALL.trained_bench]
    assert all(int(r["answer"]) == _gold(r["question"]) for r in rows)


def test_splits_are_disjoint(toy):
    raw = {r["conversations"][0]["value"] for r in pq.read_table(toy / "raw").to_pylist()}
    warm = pq.read_table(toy / "warmup").column("question").to_pylist()
    bench = [
        json.loads(line)["question"]
        for skill in ("sum", "signed")
        for line in (toy / "benchmarks" / f"toy-{skill}.jsonl").read_text().splitlines()
    ]
    assert len(bench) == 2 * SMALL.bench_per_skill and len(warm) == 2 * SMALL.warmup_per_skill
    numbers = [{re.search(r"\d+", q).group() for q in qs} for qs in (raw, warm, bench)]
    assert not (numbers[0] & numbers[1] or numbers[0] & numbers[2] or numbers[1] & numbers[2])
    assert all(len(re.search(r"\d+", q).group()) <= SMALL.warmup_max_terms for q in warm)
    assert all(len(re.search(r"\d+", q).group()) >= SMALL.min_terms for q in bench)


def test_deterministic_in_the_seed(tmp_path):
    a, b, c = (tmp_path / n for n in "abc")
    for folder, seed in ((a, 0), (b, 0), (c, 1)):
        write_toy_data(folder, seed=seed, spec=SMALL)
    for name in (
        "raw/train-00000-of-00002.parquet",
        "benchmarks/toy-sum.jsonl",
        "warmup/train-00000-of-00001.parquet",
    ):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert (a / "benchmarks/toy-sum.jsonl").read_bytes() != (c / "benchmarks/toy-sum.jsonl").read_bytes()


def test_right_trace_by_hand():
    trace = right_trace([9, -2, 7, -1], random.Random(0))
    assert _lines(trace) == [(9, "-", 2, 7), (7, "+", 7, 14), (14, "-", 1, 13)]
    assert _answer(trace) == 13


TERMS = [9, -2, 7, -1, 5]  # gold 18


@pytest.mark.parametrize("kind", ["sign", "drop", "slip", "copy"])
def test_wrong_traces_are_plausible_slips(kind):
    """One mistake of the named kind, carried through to a wrong boxed answer, the rest of the work sound."""
    for seed in range(20):
        trace, answer = wrong_trace(TERMS, kind, random.Random(seed))
        lines = _lines(trace)
        assert _answer(trace) == answer != sum(TERMS)
        bad_steps = [i for i, (a, op, d, b) in enumerate(lines) if (a + d if op == "+" else a - d) != b]
        chain = all(lines[i][3] == lines[i + 1][0] for i in range(len(lines) - 1))
        used = [lines[0][0]] + [d if op == "+" else -d for _, op, d, _ in lines]
        assert chain, trace  # each line starts from the previous line's result
        if kind == "copy":
            assert not bad_steps and used == TERMS and lines[-1][3] != answer
        elif kind == "slip":
            assert len(bad_steps) == 1 and used == TERMS and lines[-1][3] == answer
        elif kind == "sign":
            flipped = [i for i, (u, t) in enumerate(zip(used, TERMS)) if u != t]
            assert not bad_steps and len(flipped) == 1 and used[flipped[0]] == -TERMS[flipped[0]]
        else:
            assert not bad_steps and len(used) == len(TERMS) - 1 and lines[-1][3] == answer


@pytest.mark.parametrize("skill", ["sum", "signed"])
def test_drawn_numbers(skill):
    rng = random.Random(0)
    for _ in range(200):
        terms = draw_terms(skill, rng, ToySpec())
        digits = [abs(t) for t in terms]
        assert 5 <= len(terms) <= 7 and len(set(digits)) == len(digits) and 0 not in digits
        if skill == "signed":
            assert all((t < 0) == (i % 2 == 1) for i, t in enumerate(terms))
            assert min(running(terms)) >= 0
