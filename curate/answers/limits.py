"""The time limit on one math-verify step: an alarm that raises, with a backstop for a lost alarm.

    with time_limit(2.0):
        parsed = parse(text)        # AnswerTimeout once 2 s have passed

math-verify's own timeout uses ``signal.alarm`` in whole seconds and swallows the timeout. Here the alarm
is ``setitimer`` (sub-second) raising a ``BaseException`` math-verify cannot catch, so a timed-out step is
*known* to have timed out. Signals need the main thread: elsewhere (threads) a block runs unbounded, and
the verify pool's watchdog (``pool.py``) is what bounds a worker.

An alarm can be lost. Python drops an exception raised while a ``__del__`` or a GC callback runs
("Exception ignored in ..."), and a parent may block SIGALRM (``io/signals.handling`` unblocks it). A
lost one-shot alarm left a test parsing thirty nested fractions for 90 minutes, once in a few CI runs.
So the alarm repeats every ``REARM_S`` while the block runs, and one daemon thread per process (the
backstop) sends SIGALRM to the main thread itself once a block is ``BACKSTOP_S`` past its deadline, in
case the timer itself was reset. The handler raises only inside a block that is past its deadline, so a
late or stray alarm raises nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator

from ..io.signals import handling

REARM_S = 0.05  # after the first alarm, another every 50 ms until the bounded block has ended
BACKSTOP_S = 0.5  # how late a block may run before the backstop thread sends the alarm itself


class AnswerTimeout(BaseException):
    """Raised by the alarm; a BaseException so math-verify's ``except Exception`` cannot swallow it."""


class _Backstop:
    """The deadline of the block now running on the main thread, watched by a daemon thread."""

    def __init__(self) -> None:
        self.deadline: float | None = None
        self._pid: int | None = None

    def watch(self, deadline: float) -> None:
        if self._pid != os.getpid():  # first use in this process (a forked worker has no thread of ours)
            self._pid = os.getpid()
            threading.Thread(target=self._run, name="offcurate-time-limit", daemon=True).start()
        self.deadline = deadline

    def _run(self) -> None:
        main = threading.main_thread().ident
        while True:
            time.sleep(BACKSTOP_S / 2)
            deadline = self.deadline
            if deadline is not None and time.monotonic() > deadline + BACKSTOP_S:
                signal.pthread_kill(main, signal.SIGALRM)


_backstop = _Backstop()


@contextlib.contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise ``AnswerTimeout`` in the block once ``seconds`` have passed (main thread only)."""
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return
    deadline = time.monotonic() + seconds
    armed = True

    def on_alarm(signum, frame):
        if armed and time.monotonic() >= deadline - 0.005:  # a stray early alarm raises nothing
            raise AnswerTimeout

    with handling(signal.SIGALRM, on_alarm):
        signal.setitimer(signal.ITIMER_REAL, seconds, REARM_S)
        _backstop.watch(deadline)
        try:
            yield
        finally:
            while True:  # an alarm may land on any line here: retry until disarmed and stopped
                try:
                    armed = False
                    _backstop.deadline = None
                    signal.setitimer(signal.ITIMER_REAL, 0)
                    break
                except AnswerTimeout:
                    continue
