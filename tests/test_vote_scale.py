"""A small version of the vote benchmark as a correctness test: the fast path gives the naive labels.

Never a timing assertion: bench/bench_vote.py measures speed and memory.
"""

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from corpus import question_answers, write_corpus  # noqa: E402
from naive import compare, fast_labels, naive_labels  # noqa: E402

from offcurate.curate.vote import run_vote  # noqa: E402


@pytest.mark.parametrize("shards", [1, 7], ids=["one_shard", "scattered_over_7_shards"])
def test_fast_labels_equal_naive_labels(tmp_path, shards):
    corpus = write_corpus(tmp_path / "corpus", traces=480, shards=shards, min_kb=2, max_kb=12)
    naive = naive_labels(corpus, timeout=0.5)
    run_vote(corpus, tmp_path / "voted", workers=2, timeout=0.5)
    fast = fast_labels(tmp_path / "voted")
    assert compare(naive, fast) == []
    statuses = set(fast["status"].unique())
    assert {"ok", "tie"} <= statuses  # the corpus exercises more than the easy case
    assert fast.filter(pl.col("reward") == 0.0).height > 0


def test_corpus_has_the_variety_it_claims():
    answers = [question_answers(q) for q in range(2000)]
    flat = [a for group in answers for a in group]
    assert any(all(a is None for a in group) for group in answers)  # answerless questions
    assert any(a is not None and len(a) > 1000 for a in flat)  # long garbage
    assert any(a is not None and "^{10^{" in a for a in flat)  # power towers
    assert any(len({a for a in group if a}) >= 3 for group in answers)  # several distinct forms
