"""A signal handler that is sure to run for the length of a block.

A process inherits its parent's signal mask. Under a job runner that blocks SIGALRM or SIGTERM (a CI
harness did: the alarm bounding a sympy call stayed pending and one test ran for 90 minutes), a
handler installed with ``signal.signal`` alone never runs. ``handling`` also unblocks its signal on
this thread, and puts the handler and the mask back on the way out.

    with handling(signal.SIGTERM, stop):
        ...
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator
from types import FrameType

Handler = Callable[[int, FrameType | None], object]


@contextlib.contextmanager
def handling(signum: signal.Signals, handler: Handler) -> Iterator[None]:
    """Run ``handler`` on ``signum`` inside the block, even where the parent blocked it (main thread only)."""
    previous = signal.signal(signum, handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signum})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        signal.signal(signum, previous)
