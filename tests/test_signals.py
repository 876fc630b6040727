"""Handlers run even where the parent blocked their signal (a CI harness blocked SIGALRM), and the
answer time limit holds even where its first alarm is lost.

Each child process starts with the signal blocked, as it would under such a harness; the subprocess
timeout only turns the old failure (a child that never ends) into a failed test.
"""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from offcurate.curate.answers.limits import AnswerTimeout, time_limit
from offcurate.curate.io.signals import handling

BOUNDED_PARSE = """
    from offcurate.curate.answers.equivalence import Pathological, Verifier
    try:
        Verifier(timeout=0.5).parse("\\\\frac{" * 30 + "1" + "}{2}" * 30)  # many seconds unbounded
        print("read")
    except Pathological:
        print("timed out")
"""

PREEMPTED_ROLLOUT = """
    import os, signal
    from offcurate.rollout.engines import term_as_exit
    try:
        with term_as_exit():
            os.kill(os.getpid(), signal.SIGTERM)
            print("not stopped")
    except SystemExit as stop:
        print("stopped", stop.code)
"""


@pytest.mark.parametrize(
    "code, blocked, expected",
    [
        pytest.param(BOUNDED_PARSE, signal.SIGALRM, "timed out", id="alarm_bounds_a_parse"),
        pytest.param(
            PREEMPTED_ROLLOUT, signal.SIGTERM, f"stopped {128 + signal.SIGTERM}", id="sigterm_stops_rollout"
        ),
    ],
)
def test_handler_runs_with_the_signal_blocked_by_the_parent(code, blocked, expected):
    def block():
        signal.pthread_sigmask(signal.SIG_BLOCK, {blocked})

    child = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        preexec_fn=block,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == 0, child.stderr[-2000:]
    assert child.stdout.strip() == expected


def test_handling_restores_the_handler_and_the_mask():
    seen = []
    previous = signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    outer = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
    try:
        with handling(signal.SIGUSR1, lambda signum, frame: seen.append(signum)):
            signal.raise_signal(signal.SIGUSR1)
        assert seen == [signal.SIGUSR1]
        assert signal.getsignal(signal.SIGUSR1) == signal.SIG_IGN
        assert signal.SIGUSR1 in signal.pthread_sigmask(signal.SIG_BLOCK, [])
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, outer)
        signal.signal(signal.SIGUSR1, previous)


class _SlowFinalizer:
    def __del__(self):
        spin(0.6)  # the first alarm lands here: Python drops an exception raised inside __del__


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")  # the lost first alarm
def test_an_alarm_lost_in_a_finalizer_is_raised_again():
    """A one-shot alarm whose exception fell in a ``__del__`` left the rest of the block unbounded (the
    spin below ran its 20 s); the repeating alarm stops it soon after the finalizer returns."""
    finished = []
    with pytest.raises(AnswerTimeout), time_limit(0.2):
        _SlowFinalizer()  # collected at once: its __del__ runs past the limit
        spin(20)
        finished.append(True)
    assert not finished
    spin(0.2)  # disarmed: a late alarm raises nothing out here


def test_a_reset_timer_is_caught_by_the_backstop():
    """Code inside the block that resets the interval timer (``signal.alarm(0)`` does) cancels the alarm;
    the backstop thread still stops the block once it is past its deadline."""
    finished = []
    with pytest.raises(AnswerTimeout), time_limit(0.2):
        signal.setitimer(signal.ITIMER_REAL, 0)
        spin(20)
        finished.append(True)
    assert not finished


def test_an_early_alarm_raises_nothing():
    with time_limit(30):
        signal.raise_signal(signal.SIGALRM)  # a stray alarm, long before the deadline
    spin(0.1)
