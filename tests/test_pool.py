"""The verify pool: results match the in-process path, a timeout is paid once, a stuck worker is replaced."""

import time

from offcurate.curate.equivalence import LabelQuestion, ScoreAgainstGold, Verifier, label_question
from offcurate.curate.pool import VerifyPool

SLOW = "\\frac{" * 30 + "1" + "}{2}" * 30  # verify takes many seconds in pure Python


def test_pool_matches_in_process():
    tasks = [
        (i, answers) for i, answers in enumerate([["1/2", "0.5", "3"], ["4", "5"], [None], ["x=1", "1", "1"]])
    ]
    with VerifyPool(LabelQuestion(), workers=2, timeout=2.0) as pool:
        got = dict(pool.map(tasks))
    verifier = Verifier()
    assert {i: r.label for i, r in got.items()} == {i: label_question(a, verifier).label for i, a in tasks}


def test_score_against_gold():
    with VerifyPool(ScoreAgainstGold(), workers=1, timeout=2.0) as pool:
        got = dict(pool.map([(0, ["1/2", "0.5", "2", None]), (1, [None, "3"])]))
    assert got == {0: [1.0, 0.0, 0.0], 1: [0.0]}


def test_watchdog_kills_stuck_worker_and_goes_on():
    """Without soft limits only the watchdog can stop the slow answer; the run must still finish,
    the stuck question falls back to identity labels, and the other questions are labeled normally."""
    tasks = [(0, ["7", "7"]), (1, [SLOW, "2", "2"]), (2, ["1/2", "0.5"]), (3, ["4", "5", "5"])]
    start = time.monotonic()
    with VerifyPool(LabelQuestion(), workers=1, timeout=0.5, soft_limits=False, grace=0.5) as pool:
        got = dict(pool.map(tasks))
    assert time.monotonic() - start < 60
    assert pool.hard_timeouts == 1
    assert got[1].label.clusters == [1, 0, 0]  # identity fallback: "2" twice beats SLOW once
    assert got[2].label.clusters == [0, 0]  # math equivalence still used after the restart
    assert got[3].label.rewards == [0.0, 1.0, 1.0]


def test_a_timeout_is_paid_once_across_workers():
    """Forty questions hold one answer whose parse runs past any limit: the first one pays the timeout,
    the gate keeps the other worker from paying it at the same time, and the slow answer is shared."""
    nested = "x^{" * 40 + "2" + "}" * 40  # parse alone takes seconds
    tasks = [(i, [nested, str(i), str(i)]) for i in range(40)]
    with VerifyPool(LabelQuestion(), workers=2, timeout=0.5) as pool:
        got = dict(pool.map(tasks))
    assert pool.timeouts == 1
    assert all(got[i].answers == [None, str(i), str(i)] for i in range(40))


def test_each_answer_is_parsed_once_across_workers():
    """What one worker read is sent to the others (pickled), so two workers parse each distinct answer
    once between them; the unevaluated ``\\sqrt{8}`` does not survive pickling unchanged, so it is never
    shared (each worker parses it itself) and the labels stay those of the in-process path."""
    forms = ["\\frac{1}{2}", "0.5", "1/2", "3", "x=3", "\\text{(B)}", "B", "\\sqrt{8}", "2\\sqrt{2}"]
    questions = [[forms[(q + k) % len(forms)] for k in range(4)] for q in range(60)]
    tasks = list(enumerate(questions))
    with VerifyPool(LabelQuestion(), workers=2, timeout=2.0) as pool:
        got = dict(pool.map(tasks))
        shared = [key for key, _ in pool._read]
    assert sorted(shared) == sorted(f for f in forms if f != "\\sqrt{8}")
    verifier = Verifier()
    assert {i: r.label for i, r in got.items()} == {i: label_question(a, verifier).label for i, a in tasks}
