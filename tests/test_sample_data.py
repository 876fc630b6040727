"""The embedded sample (``data/sample/``): current, deterministic, OpenThoughts3-shaped, small, and covering
every extraction rule and vote outcome it is meant to exercise (``data/make_sample.py``)."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offcurate.curate.answers.boxes import _all_boxes
from offcurate.curate.answers.extract import extract_answer, final_part
from offcurate.curate.filter import keep_row, run_filter, split_conversation
from offcurate.curate.io.ids import question_id
from offcurate.curate.vote import run_vote
from offcurate.data import SAMPLE_DIR
from offcurate.data.make_sample import (
    N_SAMPLES,
    QUESTIONS,
    SCHEMA,
    build_sample,
    card,
    main,
    split_shards,
)

SHARD_NAMES = ["train-00000-of-00002.parquet", "train-00001-of-00002.parquet"]
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def built():
    return build_sample()


@pytest.fixture(scope="module")
def table(built) -> pa.Table:
    return built[0]


@pytest.fixture(scope="module")
def expectations(built) -> list[dict]:
    return built[1]


@pytest.fixture(scope="module")
def traces(table) -> list[dict]:
    """Usable math rows: question id, raw question, response, extracted answer, finished."""
    out = []
    for row in table.to_pylist():
        keep, _ = keep_row(row["domain"], row["conversations"], {"math"})
        if keep:
            question, response = split_conversation(row["conversations"])
            answer, finished = extract_answer(response)
            out.append(
                {
                    "qid": question_id(question),
                    "question": question,
                    "response": response,
                    "answer": answer,
                    "finished": finished,
                    "roles": tuple(t["from"] for t in row["conversations"]),
                }
            )
    return out


# --- the committed files are current and regeneration is deterministic ---------------------------------


def test_sample_dir_holds_exactly_the_two_shards_and_the_card():
    assert sorted(p.name for p in SAMPLE_DIR.iterdir()) == ["README.md", *SHARD_NAMES]


@pytest.mark.parametrize("index", [0, 1], ids=SHARD_NAMES)
def test_shipped_shard_equals_a_fresh_build(table, index):
    shipped = pq.read_table(SAMPLE_DIR / SHARD_NAMES[index])
    expected = split_shards(table)[index]
    assert shipped.schema.equals(SCHEMA)
    assert shipped.num_rows == expected.num_rows
    assert shipped.equals(expected), "data/sample is stale: run `python -m offcurate.data.make_sample`"


def test_shipped_card_equals_a_fresh_build(table, expectations):
    assert (SAMPLE_DIR / "README.md").read_text(encoding="utf-8") == card(table, expectations)


def test_build_is_deterministic(table, expectations):
    again, again_expectations = build_sample()
    assert again.equals(table) and again_expectations == expectations
    other, other_expectations = build_sample(seed=1)
    assert not other.equals(table)  # the seed drives the layout ...
    assert other_expectations == expectations  # ... never the intended outcomes


def test_main_writes_the_same_files_twice_and_removes_stale_shards(tmp_path: Path):
    (tmp_path / "train-00002-of-00003.parquet").write_bytes(b"stale")
    main(["-o", str(tmp_path)])
    first = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    main(["--output", str(tmp_path)])
    assert sorted(first) == ["README.md", *SHARD_NAMES]
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == first
    for name in SHARD_NAMES:
        assert pq.read_table(tmp_path / name).equals(pq.read_table(SAMPLE_DIR / name))
    assert first["README.md"] == (SAMPLE_DIR / "README.md").read_bytes()


# --- shape, schema, size -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SHARD_NAMES)
def test_schema_is_exactly_openthoughts3(name):
    schema = pq.read_schema(SAMPLE_DIR / name)
    assert schema.names == ["difficulty", "source", "domain", "conversations"]
    assert [str(f.type) for f in schema] == [
        "int64",
        "string",
        "string",
        "list<element: struct<from: string, value: string>>",
    ]
    assert all(f.nullable for f in schema)
    assert schema.equals(SCHEMA)


@pytest.mark.parametrize("name", SHARD_NAMES)
def test_shards_are_zstd_and_small(name):
    meta = pq.ParquetFile(SAMPLE_DIR / name).metadata
    columns = [
        meta.row_group(g).column(c) for g in range(meta.num_row_groups) for c in range(meta.num_columns)
    ]
    assert {c.compression for c in columns} == {"ZSTD"}
    assert (SAMPLE_DIR / name).stat().st_size < MIB


def test_whole_sample_is_under_two_mib():
    assert sum(p.stat().st_size for p in SAMPLE_DIR.iterdir()) < 2 * MIB


def test_every_math_trace_is_short(traces):
    sizes = [len(t["response"].encode()) for t in traces]
    assert len(sizes) == len(QUESTIONS) * N_SAMPLES
    assert min(sizes) >= 500 and max(sizes) <= 2048


def test_conversations_are_question_then_teacher(table):
    for row in table.to_pylist():
        roles = [t["from"] for t in row["conversations"]]
        assert roles[0] in ("human", "user") and len(roles) <= 2
        assert roles[1:] in ([], ["gpt"], ["assistant"])


@pytest.mark.parametrize(
    "roles", [("human", "gpt"), ("user", "assistant")], ids=["human_gpt", "user_assistant"]
)
def test_both_role_spellings_occur_in_usable_math_rows(traces, roles):
    assert sum(t["roles"] == roles for t in traces) >= 10


def test_source_and_difficulty_are_per_question(table):
    rows = [r for r in table.to_pylist() if r["domain"] == "math" and len(r["conversations"]) == 2]
    per_q = defaultdict(set)
    for row in rows:
        per_q[question_id(row["conversations"][0]["value"])].add((row["source"], row["difficulty"]))
    assert all(len(pairs) == 1 for pairs in per_q.values())
    difficulties = [q.difficulty for q in QUESTIONS]
    assert {d for d in difficulties if d is not None} <= set(range(1, 11))
    assert difficulties.count(None) >= 2
    assert {"ai2-adapt-dev/openmath-2-math", "nvidia/OpenMathReasoning"} <= {q.source for q in QUESTIONS}


# --- grouping: shuffled over both shards, whitespace noise -------------------------------------------------


def test_rows_of_each_question_are_shuffled_over_both_shards(table):
    shard_of = [i for i, shard in enumerate(split_shards(table)) for _ in range(shard.num_rows)]
    positions = defaultdict(list)
    for position, row in enumerate(table.to_pylist()):
        if (
            row["domain"] == "math"
            and len(row["conversations"]) == 2
            and row["conversations"][1]["value"].strip()
        ):
            positions[question_id(row["conversations"][0]["value"])].append(position)
    assert len(positions) == len(QUESTIONS)
    for rows in positions.values():
        assert len(rows) == N_SAMPLES
        assert {shard_of[p] for p in rows} == {0, 1}
        assert rows[-1] - rows[0] > N_SAMPLES  # not one contiguous block


def test_whitespace_noise_collapses_to_the_question(traces, expectations):
    canonical = {question_id(e["question"]): e["question"] for e in expectations}
    variants = defaultdict(set)
    for t in traces:
        assert " ".join(t["question"].split()) == " ".join(canonical[t["qid"]].split())
        variants[t["qid"]].add(t["question"])
    assert sum(len(v) > 1 for v in variants.values()) >= 8


NOISE = {
    "trailing_newline": lambda q: q.endswith("\n"),
    "double_space": lambda q: "  " in q.strip(),
    "leading_space": lambda q: q.startswith(" "),
    "newline_inside": lambda q: "\n" in q.strip(),
}


@pytest.mark.parametrize("noise", list(NOISE.values()), ids=list(NOISE))
def test_each_kind_of_whitespace_noise_occurs(traces, noise):
    assert sum(noise(t["question"]) for t in traces) >= 3


# --- answer extraction: every rule occurs, and each trace yields the intended answer -----------------------


def test_each_trace_yields_its_intended_answer(traces):
    """Per question, the extracted answers are exactly the written forms (and misses) it was built with."""
    got = defaultdict(Counter)
    for t in traces:
        got[t["qid"]][t["answer"]] += 1
    for q in QUESTIONS:
        want = Counter({None: q.unanswered} if q.unanswered else {})
        for cluster in q.clusters:
            for form, count in cluster:
                want[form] += count
        assert got[question_id(q.text)] == want, q.text


def _last_box(text: str) -> str | None:
    """The content of the last complete box alone: which rule a sample trace exercises, not extraction."""
    boxes = _all_boxes(text)
    return boxes[-1] if boxes else None


def _thinking(response: str) -> str:
    close = response.rfind("</think>")
    return response[:close] if close >= 0 else response


RULES = {
    # the last \boxed{...} of the final part, with nested braces
    "nested_braces_in_final_box": lambda t: (
        t["answer"] is not None and "{" in t["answer"] and "\\boxed" in final_part(t["response"])
    ),
    "two_boxes_in_final_part_last_counts": lambda t: (
        t["finished"]
        and final_part(t["response"]).count("\\boxed") >= 2
        and t["answer"] == _last_box(final_part(t["response"]))
    ),
    "box_in_thinking_revised_later": lambda t: (
        t["answer"] is not None
        and "</think>" in t["response"]
        and _last_box(_thinking(t["response"])) not in (None, t["answer"])
    ),
    "truncated_without_box": lambda t: not t["finished"] and "\\boxed" not in t["response"],
    "truncated_with_box_in_thinking": lambda t: not t["finished"] and "\\boxed" in t["response"],
    "no_thinking_tags": lambda t: "<think>" not in t["response"] and t["answer"] is not None,
    "stated_the_final_answer_is": lambda t: (
        t["answer"] is not None
        and "\\boxed" not in final_part(t["response"])
        and re.search(r"final answer is:? \$", final_part(t["response"])) is not None
    ),
    "stated_bold_final_answer": lambda t: (
        t["answer"] is not None
        and "\\boxed" not in final_part(t["response"])
        and "**Final Answer:**" in final_part(t["response"])
    ),
    "stated_bold_final_answer_without_dollars": lambda t: (
        t["answer"] is not None and re.search(r"\*\*Final Answer:\*\* [^$]", final_part(t["response"]) or "")
    ),
    "finished_without_any_answer": lambda t: t["finished"] and t["answer"] is None,
}


@pytest.mark.parametrize("rule", list(RULES.values()), ids=list(RULES))
def test_each_extraction_rule_occurs_in_several_questions(traces, rule):
    hits = [t for t in traces if rule(t)]
    assert len(hits) >= 5
    assert len({t["qid"] for t in hits}) >= 3


def test_truncated_traces_have_no_answer_even_with_a_box(traces):
    truncated = [t for t in traces if not t["finished"]]
    assert truncated and all(t["answer"] is None for t in truncated)
    assert all("</think>" not in t["response"] for t in truncated)


# --- vote outcomes ---------------------------------------------------------------------------------------


def test_expectations_have_the_documented_shape(expectations):
    assert len(expectations) == len(QUESTIONS) == 48
    for e in expectations:
        assert set(e) == {"question", "majority_forms", "status", "majority_votes", "n_samples"}
        assert e["n_samples"] == N_SAMPLES
        assert (e["majority_forms"] is None) == (e["status"] != "ok")
        assert (e["majority_votes"] == 0) == (e["status"] == "no_answer")
        assert e["question"] == " ".join(e["question"].split())
    assert len({question_id(e["question"]) for e in expectations}) == len(expectations)


VOTE_KINDS = {
    "all_positive": (lambda e: e["status"] == "ok" and e["majority_votes"] == N_SAMPLES, 10),
    "split": (lambda e: e["status"] == "ok" and e["majority_votes"] < N_SAMPLES, 10),
    "exact_tie_8_vs_8": (lambda e: e["status"] == "tie" and e["majority_votes"] == 8, 3),
    "tie_with_unanswered": (lambda e: e["status"] == "tie" and e["majority_votes"] < 8, 1),
    "no_answer": (lambda e: e["status"] == "no_answer", 3),
    "plurality_below_half": (lambda e: e["status"] == "ok" and e["majority_votes"] < N_SAMPLES / 2, 3),
}


@pytest.mark.parametrize("kind", list(VOTE_KINDS.values()), ids=list(VOTE_KINDS))
def test_each_vote_outcome_occurs(expectations, kind):
    is_kind, at_least = kind
    assert sum(is_kind(e) for e in expectations) >= at_least


def test_three_way_splits_occur():
    assert sum(len(q.clusters) >= 3 and q.status == "ok" for q in QUESTIONS) >= 3


def _is_number(form: str) -> bool:
    return re.fullmatch(r"-?\d+(\.\d+)?", form) is not None


# Pairs of written forms that must vote together: (first kind of form, second kind of form).
EQUIVALENT_FORMS = {
    "fraction_and_decimal": (lambda f: "frac" in f, lambda f: _is_number(f) and "." in f),
    "fraction_spellings": (lambda f: "\\frac{" in f, lambda f: "\\dfrac" in f or re.fullmatch(r"\d+/\d+", f)),
    "equation_and_value": (lambda f: re.fullmatch(r"[a-z]\s*=.+", f), lambda f: "=" not in f),
    "radical_forms": (lambda f: re.fullmatch(r"\d+\s*\\sqrt.*", f), lambda f: f.startswith("\\sqrt")),
    "degrees_and_number": (lambda f: "\\circ" in f, _is_number),
    "set_orders": (lambda f: f.startswith("\\{"), lambda f: f.startswith("\\{")),
    "interval_and_inequality": (
        lambda f: f[:1] in "([" and f[-1:] in ")]",
        lambda f: "<" in f or "\\le" in f or "\\ge" in f,
    ),
    "text_choice_and_letter": (lambda f: f.startswith(("\\text{(", "\\textbf{(")), lambda f: len(f) == 1),
}


@pytest.mark.parametrize("pair", list(EQUIVALENT_FORMS.values()), ids=list(EQUIVALENT_FORMS))
def test_each_kind_of_equivalent_forms_occurs_in_one_majority(expectations, pair):
    """Counted on the majority classes the expectations promise: two different written forms, one of each
    kind, in the class of at least two questions (the pipeline test below checks they really merge)."""
    first, second = pair
    hits = 0
    for e in expectations:
        forms = e["majority_forms"] or []
        keys = {f: "".join(f.split()) for f in forms}
        hits += any(first(a) and second(b) and keys[a] != keys[b] for a in forms for b in forms)
    assert hits >= 2


def test_majority_form_is_strictly_the_most_written():
    """So the vote stage's ``majority_answer`` (most written form of the class) is ``majority_forms[0]``."""
    for q in QUESTIONS:
        if q.status == "ok":
            top = max(q.clusters, key=lambda c: sum(n for _, n in c))
            counts = sorted((n for _, n in top), reverse=True)
            assert len(counts) == 1 or counts[0] > counts[1], q.text


# --- the filter drops what it must ------------------------------------------------------------------------

DROPS = {
    "kept": 768,
    "domain=code": 6,
    "domain=science": 6,
    "no_teacher_turn": 1,
    "empty_response": 2,
}


@pytest.mark.parametrize("reason, count", list(DROPS.items()), ids=list(DROPS))
def test_filter_reasons(table, reason, count):
    reasons = Counter(keep_row(r["domain"], r["conversations"], {"math"})[1] for r in table.to_pylist())
    assert reasons[reason] == count
    assert sum(reasons.values()) == table.num_rows == sum(DROPS.values())


# --- end to end: filter + vote on the shipped shards give the intended outcomes ---------------------------


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    root = tmp_path_factory.mktemp("sample_pipeline")
    filtered = run_filter(SAMPLE_DIR, root / "math")
    run_vote(root / "math", root / "voted", workers=2)
    return filtered, pl.read_parquet(root / "voted" / "questions" / "*.parquet")


@pytest.mark.slow
def test_filter_on_the_shipped_sample_counts_every_drop(voted):
    report, _ = voted
    assert report.counts["kept trajectories"] == 768 and report.counts["questions"] == 48
    assert dict(report.dropped) == {k: v for k, v in DROPS.items() if k != "kept"}


@pytest.mark.slow
@pytest.mark.parametrize(
    "index", range(len(QUESTIONS)), ids=[f"q{i:02d}_{q.family}_{q.status}" for i, q in enumerate(QUESTIONS)]
)
def test_vote_on_the_shipped_sample_gives_the_intended_outcome(voted, expectations, index):
    _, questions = voted
    e = expectations[index]
    (row,) = questions.filter(pl.col("question_id") == question_id(e["question"])).iter_rows(named=True)
    assert (row["status"], row["majority_votes"], row["n_samples"]) == (
        e["status"],
        e["majority_votes"],
        e["n_samples"],
    )
    if e["majority_forms"] is None:
        assert row["majority_answer"] is None
    else:
        assert row["majority_answer"] == e["majority_forms"][0]
    assert row["all_positive"] == (e["status"] == "ok" and e["majority_votes"] == e["n_samples"])
