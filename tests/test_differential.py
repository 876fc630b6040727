"""The contract of issue 11: offcurate's decisions agree with plain math-verify wherever a trace states its
answer in a box.

Each (gold, trace) pair of the corpus (``answer_shapes.py``: hand-written cases per class, generated
variations, the real Qwen samples, the benchmarks' reference solutions) is decided twice:

- by offcurate: the trace's answer as ``vote``/``eval`` extract it, scored against the gold by ``eval``'s
  ``ScoreAgainstGold`` and clustered with the gold by ``vote``'s ``label_question``;
- by math-verify 0.9.0 alone on the trace's final part: ``verify(parse(gold), parse(final_part))`` for
  eval (one direction), and that or ``verify(parse(final_part), parse(gold))`` for vote (no gold: either
  direction). The gold is given to ``parse`` as offcurate gives it (``as_math``: ``$gold$``).

They must agree on every case except the ones named in ``EXCEPTIONS`` (with the reason); a named exception
that starts to agree fails the test too, so the list stays exact.
"""

from __future__ import annotations

import logging

import pytest
from answer_shapes import SHARED, Case, all_cases

from offcurate.curate.answers.equivalence import ScoreAgainstGold, Verifier, as_math, label_question
from offcurate.curate.answers.extract import extract_answer, final_part

logging.getLogger("math_verify").setLevel(logging.CRITICAL)

NO_BOX = (
    "no box in the final part: offcurate takes only an explicitly stated final answer, math-verify falls "
    "back to the last number or formula anywhere in the text"
)
EXCEPTIONS: dict[str, str] = {
    "hand:nobox_last_number": NO_BOX,
    "aime24:40de3e36fcb84aa5": NO_BOX + " (the solution ends '$180 + 24 = 204$. -sepehr2010')",
}


def math_verify_decides(case: Case) -> tuple[bool, bool]:
    """(eval's answer, vote's answer) of plain math-verify on the trace's final part."""
    from math_verify import parse, verify

    gold, prediction = parse(as_math(case.gold)), parse(final_part(case.trace))
    forward = verify(gold, prediction)
    return forward, forward or verify(prediction, gold)


def offcurate_decides(case: Case, verifier: Verifier) -> tuple[bool, bool]:
    answer, _ = extract_answer(case.trace)
    correct = ScoreAgainstGold().run([case.gold, answer], verifier)[0] == 1.0
    clusters = label_question([case.gold, answer], verifier).label.clusters
    return correct, clusters[1] is not None and clusters[0] == clusters[1]


@pytest.fixture(scope="module")
def decisions():
    verifier = Verifier(timeout=5.0)
    return {case.name: (offcurate_decides(case, verifier), math_verify_decides(case)) for case in all_cases()}


def disagreements(decisions) -> dict[str, str]:
    out = {}
    for name, ((eval_ours, vote_ours), (eval_ref, vote_ref)) in decisions.items():
        if eval_ours != eval_ref:
            out[f"{name}"] = f"eval: offcurate {eval_ours}, math-verify {eval_ref}"
        elif vote_ours != vote_ref:
            out[f"{name}"] = f"vote: offcurate {vote_ours}, math-verify {vote_ref}"
    return out


def test_corpus_covers_every_source(decisions):
    prefixes = {name.split(":")[0] for name in decisions}
    assert {"hand", "gen"} <= prefixes
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} is absent: the real samples and benchmark solutions are not in the corpus")
    assert {"qwen", "math500", "minerva_math"} <= prefixes
    assert len(decisions) > 2000


def test_offcurate_agrees_with_math_verify_except_named_cases(decisions):
    found = disagreements(decisions)
    unexpected = {name: why for name, why in found.items() if name not in EXCEPTIONS}
    sources = {name.split(":")[0] for name in decisions}  # without ../shared: hand and gen only
    stale = sorted(name for name in set(EXCEPTIONS) - set(found) if name.split(":")[0] in sources)
    print(f"\n{len(decisions)} cases, {len(decisions) - len(found)} agree, {len(found)} named exceptions")
    assert unexpected == {}
    assert stale == []
