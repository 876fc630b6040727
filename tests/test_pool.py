"""The verify pool: results match the in-process path, a timeout is paid once, a stuck worker is replaced."""

import time
from collections import deque

from offcurate.curate.answers.equivalence import LabelQuestion, ScoreAgainstGold, Verifier, label_question
from offcurate.curate.answers.pool import READS_PER_MESSAGE, VerifyPool, _Slot

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
    """What one worker parsed is sent to the others (pickled), so two workers parse each distinct answer
    once between them; the unevaluated ``2^{10}`` does not survive pickling unchanged, so it is never
    shared (each worker parses it itself), nor is what a fast path reads (``0.5``, ``x=3``, ``B``,
    ``2\\sqrt{2}``: cheaper to read again than to share), and the labels stay those of the in-process path."""
    forms = ["\\frac{1}{2}", "0.5", "1/2", "3", "x=3", "\\text{(B)}", "B", "2^{10}", "2\\sqrt{2}", "3x^2"]
    questions = [[forms[(q + k) % len(forms)] for k in range(4)] for q in range(60)]
    tasks = list(enumerate(questions))
    with VerifyPool(LabelQuestion(), workers=2, timeout=2.0) as pool:
        got = dict(pool.map(tasks))
        shared = [key for key, _, _ in pool._read]
    assert shared == ["3x^2"]
    verifier = Verifier()
    assert {i: r.label for i, r in got.items()} == {i: label_question(a, verifier).label for i, a in tasks}


class _Recorder:
    """Stands in for a worker's pipe: keeps what the pool sends."""

    def __init__(self):
        self.messages = []

    def send(self, message):
        self.messages.append(message)


def test_shared_reads_go_out_in_small_messages_each_once():
    """A slot far behind the log gets it a bounded piece per batch (a parent blocked on a full pipe would
    check no deadline), never its own reads back, every other read exactly once, and the log's head is
    dropped once every slot has passed it."""
    pool = VerifyPool(LabelQuestion(), workers=2, timeout=2.0, start=False)
    pool._slots = [_Slot(None, _Recorder(), deque()) for _ in range(2)]
    blob = b"x" * 100
    pool._read = [(f"k{i}", blob, pool._slots[i % 2]) for i in range(5000)]
    for _ in range(40):
        pool._send(0, [])
        pool._send(1, [])
    for n, slot in enumerate(pool._slots):
        sizes = [sum(len(k) + len(b) for k, b in m[1]) for m in slot.conn.messages]
        assert max(sizes) < READS_PER_MESSAGE + 200
        got = [k for m in slot.conn.messages for k, _ in m[1]]
        assert got == [f"k{i}" for i in range(5000) if i % 2 != n]  # in order, each once, none of its own
    assert pool._read_base + len(pool._read) == 5000  # dropped in chunks of > 1024 passed entries
    assert pool._read_base >= 5000 - 1024
