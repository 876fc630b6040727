"""``evaluate`` against a reference grader on real model text: 100 MATH problems x 8 Qwen2.5-Math-7B samples.

The file carries the Qwen2.5-Math harness's own per-sample correctness (``score``) and extracted answers
(``pred``). Per-sample correctness must agree on all 800 samples but one: idx 72, gold ``10{,}000``, where
the model writes ``10000``; the reference grader calls it wrong, math-verify (rightly) equal. maj@8 must
equal the reference's majority (most common ``pred``, first seen on ties, scored by ``score``) everywhere.
"""

import json
from collections import Counter
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offcurate.curate.io.ids import question_id
from offcurate.eval.evaluate import evaluate

FILE = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_samples"
FILE = FILE / "qwen25-math-7b-instruct_math_8samples.jsonl"
pytestmark = pytest.mark.skipif(
    not FILE.exists(), reason=f"real samples not found at {FILE} (../shared absent)"
)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    problems = [json.loads(line) for line in FILE.read_text().splitlines()]
    root = tmp_path_factory.mktemp("graded")
    gold = [{"question": p["question"], "answer": p["gt"]} for p in problems]
    (root / "qwen_math.jsonl").write_text("\n".join(map(json.dumps, gold)))
    rows = [
        {"question_id": question_id(p["question"]), "sample_idx": i, "response": response}
        for p in problems
        for i, response in enumerate(p["response"])
    ]
    (root / "responses").mkdir()
    pq.write_table(pa.Table.from_pylist(rows), root / "responses" / "part-0.parquet")
    evaluate([root / "qwen_math.jsonl"], root / "responses", root / "eval", workers=2)
    return problems, pl.read_parquet(root / "eval" / "results.parquet")


def test_correctness_agrees_with_the_reference_grader(graded):
    problems, results = graded
    disagree = {
        (p["idx"], row["answers"][i])
        for p, row in zip(problems, results.iter_rows(named=True))
        for i, (ours, theirs) in enumerate(zip(row["correct"], p["score"]))
        if ours != theirs
    }
    assert disagree == {(72, "10000")}
    assert results["samples"].to_list() == [8] * 100


def test_maj_at_8_agrees_with_the_reference_majority(graded):
    problems, results = graded
    reference = []
    for p in problems:
        top = Counter(p["pred"]).most_common(1)[0][0]
        reference.append(float(p["score"][p["pred"].index(top)]))
    assert results["maj_at_k"].to_list() == reference
