"""A small version of the vote benchmark as a correctness test: the fast path gives the naive labels,
whatever the shard layout, the number of spill partitions or the slicing of the question-hash space.

Never a timing assertion: bench/bench_vote.py measures speed and memory.
"""

import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from corpus import VARIANTS, question_answers, write_corpus  # noqa: E402
from naive import compare, fast_labels, naive_labels  # noqa: E402

from offcurate.curate.io.spill import ROWS_PER_PARTITION  # noqa: E402
from offcurate.curate.vote import run_vote  # noqa: E402

TRACES = 480  # 30 questions, small traces: the labels do not depend on the shard layout, so one naive run
# The default limit, not a tighter one: late in a test session a full garbage collection of the big heap
# took a plain "x=681" past 0.5 s in the naive run (4 failures, one CI run). The slow answers here need
# 12 s or more, so 2 s still times them out; at 480 traces the naive run meets no timeout either way.
TIMEOUT = 2.0


def small_corpus(folder: Path, shards: int) -> Path:
    """Answers per question (the benchmark's default), with the slow ones: timeouts are exercised too."""
    return write_corpus(folder, traces=TRACES, shards=shards, min_kb=2, max_kb=12, slow=True)


@pytest.fixture(scope="module")
def naive(tmp_path_factory):
    labels, _ = naive_labels(small_corpus(tmp_path_factory.mktemp("naive") / "corpus", 1), timeout=TIMEOUT)
    return labels


CASES = {  # shards, rows per spill partition, slices of the question-hash space
    "one_shard": (1, ROWS_PER_PARTITION, 1),
    "scattered_over_7_shards": (7, ROWS_PER_PARTITION, 1),
    "ten_spill_partitions": (7, 48, 1),
    "three_slices_concatenated": (7, 48, 3),
}


@pytest.mark.parametrize("shards, rows_per_partition, slices", list(CASES.values()), ids=list(CASES))
def test_fast_labels_equal_naive_labels(tmp_path, naive, shards, rows_per_partition, slices):
    corpus = small_corpus(tmp_path / "corpus", shards)
    for index in range(slices):
        run_vote(
            corpus,
            tmp_path / "voted" / f"slice-{index}",
            workers=2,
            timeout=TIMEOUT,
            shard_index=index,
            num_shards=slices,
            rows_per_partition=rows_per_partition,
        )
    fast = fast_labels(tmp_path / "voted")
    assert compare(naive, fast) == []
    statuses = set(fast["status"].unique())
    assert {"ok", "tie"} <= statuses  # the corpus exercises more than the easy case
    assert fast.filter(pl.col("reward") == 0.0).height > 0


@pytest.mark.parametrize("variant", ["per-question", "reused"])
def test_corpus_has_the_variety_it_claims(variant):
    answers = [question_answers(q, variant, slow=True) for q in range(2000)]
    flat = [a for group in answers for a in group]
    assert any(all(a is None for a in group) for group in answers)  # answerless questions
    assert any(a is not None and len(a) > 1000 for a in flat)  # long garbage
    assert any(a is not None and "^{10^{" in a for a in flat)  # power towers
    assert any(len({a for a in group if a}) >= 3 for group in answers)  # several distinct forms
    plain = [a for q in range(2000) for a in question_answers(q, variant) if a is not None]
    assert not any(len(a) > 1000 or "^{10^{" in a for a in plain)  # slow answers only on request


def test_per_question_answers_are_mostly_their_own():
    """The default corpus has the shape of real data: a distinct answer string rarely recurs in another
    question (the ``reused`` variant: ~10.8k distinct strings in 850k traces)."""
    groups = {v: [{a for a in question_answers(q, v) if a} for q in range(2000)] for v in VARIANTS}
    distinct = {v: len(set().union(*g)) for v, g in groups.items()}
    per_question = sum(len(g) for g in groups["per-question"]) / 2000
    assert 2 <= per_question <= 4
    assert distinct["per-question"] > 0.7 * sum(len(g) for g in groups["per-question"])
    assert distinct["reused"] < 0.5 * distinct["per-question"]
