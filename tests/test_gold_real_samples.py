"""The pseudo-label accuracy ``vote`` reports, on real model text with known golds.

100 MATH problems x 8 Qwen2.5-Math-7B-Instruct responses (``../shared/data/real_samples``), laid out as
OpenR1-Math-220k: one row per problem, the 8 responses as ``generations``, the gold ``gt`` as ``answer``
and the reference grader's per-sample ``score`` as ``correctness_math_verify``. The accuracy ``vote``
reports must equal the one computed here without offcurate: plain math-verify on each whole response,
classes of answers ``verify`` relates in either direction, ties left out, the majority's most written form
checked with ``verify(parse("$gt$"), ...)``; and the one the reference grader's own extractions and
scores give (majority ``pred``, scored by ``score``). The only trace where offcurate's gold reward and the
file's verdict differ is idx 72's ``10000`` against the gold ``10{,}000`` (math-verify: equal; the
reference grader: not), as ``tests/test_eval_real_samples.py`` finds for ``eval``.
"""

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
from gold_builders import OPENR1_SCHEMA, write_layout

from offcurate.curate.filter import run_filter
from offcurate.curate.gold import ACCURACY
from offcurate.curate.io.ids import question_id
from offcurate.curate.stats import run_stats
from offcurate.curate.vote import run_vote

FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_samples"
FILE = FILE / "qwen25-math-7b-instruct_math_8samples.jsonl"
pytestmark = pytest.mark.skipif(
    not FILE.exists(), reason=f"real samples not found at {FILE} (../shared absent)"
)


def openr1_rows(problems: list[dict]) -> pa.Table:
    rows = [
        {
            "problem": p["question"],
            "solution": p["solution"],
            "answer": p["gt"],
            "problem_type": p.get("type"),
            "question_type": "math-word-problem",
            "source": "MATH",
            "uuid": str(p["idx"]),
            "is_reasoning_complete": [True] * len(p["response"]),
            "generations": p["response"],
            "correctness_math_verify": p["score"],
            "correctness_llama": None,
            "finish_reasons": ["stop"] * len(p["response"]),
            "correctness_count": sum(p["score"]),
            "messages": [{"content": p["question"], "role": "user"}],
        }
        for p in problems
    ]
    return pa.Table.from_pylist(rows, OPENR1_SCHEMA)


def plain_math_verify_majority_right(problem: dict) -> bool | None:
    """Is the majority answer right? Plain math-verify only; None on a tie or without answers."""
    from math_verify import parse, verify

    parsed = [parse(r) for r in problem["response"]]
    answered = [i for i, p in enumerate(parsed) if p]
    root = {i: i for i in answered}

    def find(i: int) -> int:
        while root[i] != i:
            i = root[i]
        return i

    for x, a in enumerate(answered):
        for b in answered[x + 1 :]:
            same = (
                parsed[a][-1] == parsed[b][-1] or verify(parsed[a], parsed[b]) or verify(parsed[b], parsed[a])
            )
            if same and find(a) != find(b):
                root[find(a)] = find(b)
    sizes = Counter(find(i) for i in answered).most_common()
    if not sizes or (len(sizes) > 1 and sizes[0][1] == sizes[1][1]):
        return None
    members = [i for i in answered if find(i) == sizes[0][0]]
    written = Counter(parsed[i][-1] for i in members)
    top = max(written.values())
    majority = next(i for i in members if written[parsed[i][-1]] == top)  # first of the most written form
    return verify(parse(f"${problem['gt']}$"), parsed[majority])


def reference_majority_right(problem: dict) -> bool | None:
    """The reference grader's view: most common ``pred`` (None on a tie), its ``score``."""
    counts = Counter(problem["pred"]).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    return bool(problem["score"][problem["pred"].index(counts[0][0])])


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    problems = [json.loads(line) for line in FILE.read_text().splitlines()]
    root = tmp_path_factory.mktemp("real_gold")
    table = openr1_rows(problems)
    write_layout(root / "raw", table.slice(0, 50), table.slice(50))
    run_filter(root / "raw", root / "math", fmt="openr1-math")
    report = run_vote(root / "math", root / "voted", workers=2)
    return problems, root, report


def test_reported_accuracy_equals_plain_math_verify_and_the_reference_grader(labeled):
    problems, root, report = labeled
    independent = {p["idx"]: plain_math_verify_majority_right(p) for p in problems}
    scored = [v for v in independent.values() if v is not None]
    assert report.counts[ACCURACY] == sum(scored) / len(scored)
    assert report.counts["ok questions with a gold"] == len(scored) == 96  # 4 ties
    reference = [v for v in map(reference_majority_right, problems) if v is not None]
    assert sum(reference) / len(reference) == report.counts[ACCURACY] == 91 / 96
    questions = pl.read_parquet(root / "voted" / "questions" / "*.parquet")
    ours = dict(zip(questions["question_id"], questions["gold_agrees"]))
    assert {p["idx"]: ours[question_id(p["question"])] for p in problems} == independent


def test_verdicts_disagree_only_where_the_reference_grader_misreads_a_comma(labeled, tmp_path):
    problems, root, _ = labeled
    report = run_stats(root / "voted", tmp_path / "stats", workers=2)
    disagree = pl.read_parquet(tmp_path / "stats" / "verdict_disagreements.parquet")
    idx72 = next(p for p in problems if p["idx"] == 72)
    assert disagree.select("question_id", "gold", "answer", "gold_reward", "dataset_verdict").rows() == [
        (question_id(idx72["question"]), "10{,}000", "10000", 1.0, False)
    ]
    assert report.counts["agreement of gold_reward with the dataset's verdicts"] == 799 / 800
