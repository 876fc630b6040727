"""Majority vote on real model text: 100 MATH problems x 8 Qwen2.5-Math-7B-Instruct samples.

Each response is wrapped as the final part of an OpenThoughts3-style trace. Wherever the correct answer
holds a strict majority, every trajectory's reward must equal the reference grader's correctness.
"""

import json
from pathlib import Path

import polars as pl
import pytest
from builders import ot3_row, write_ot3

from offcurate.curate.filter import run_filter
from offcurate.curate.io.ids import question_id
from offcurate.curate.vote import run_vote

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real_samples"
FILE = REAL / "qwen25-math-7b-instruct_math_8samples.jsonl"
pytestmark = pytest.mark.skipif(
    not FILE.exists(), reason=f"real samples not found at {FILE} (../shared absent)"
)


def wrap(response: str) -> str:
    return f"<think>\nLet me work through this.\n</think>\n\n{response}"


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    problems = [json.loads(line) for line in FILE.read_text().splitlines()]
    rows = [ot3_row(p["question"], wrap(r)) for p in problems for r in p["response"]]
    root = tmp_path_factory.mktemp("real")
    write_ot3(root / "raw", [rows[::2], rows[1::2]])
    run_filter(root / "raw", root / "math")
    run_vote(root / "math", root / "voted", workers=2)
    return problems, pl.read_parquet(root / "voted" / "trajectories" / "*.parquet")


def test_rewards_equal_reference_correctness_where_correct_is_majority(labeled):
    problems, traces = labeled
    checked = mismatches = 0
    for problem in problems:
        if sum(problem["score"]) * 2 <= len(problem["score"]):
            continue
        group = traces.filter(pl.col("question_id") == question_id(problem["question"]))
        reward_of = dict(zip(group["response"], group["reward"]))
        for response, correct in zip(problem["response"], problem["score"]):
            checked += 1
            mismatches += reward_of[wrap(response)] != float(correct)
    assert checked >= 85 * 8  # 89 of the 100 problems have a correct strict majority
    assert mismatches == 0


def test_every_trace_gets_an_answer(labeled):
    _, traces = labeled
    assert traces.height == 800
    assert traces["answer"].null_count() == 0
