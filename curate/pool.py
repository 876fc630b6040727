"""A process pool for math-verify work, with a watchdog that kills a stuck worker.

A task is ``(index, answers)``; a *job* (``LabelQuestion`` for vote, ``ScoreAgainstGold`` for base
rollouts and eval) turns the answers into a result. Each worker runs jobs on its main thread (so the
per-step ``setitimer`` alarm works) and reports after every task. The parent gives each task a deadline
of ``timeout * (distinct answers + 2) + 5`` seconds; a worker that misses it is stuck in C code no
signal can interrupt (a huge integer power, say). It is killed and replaced, that task gets the job's
string-identity fallback (counted as ``hard_timeouts``), and the rest of its batch goes to the new
worker. Nothing can stall the run.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from .equivalence import Job, Verifier

Task = tuple[int, list[str | None]]  # (task index, answers)
BATCH = 32


def _worker(conn: Connection, job: Job, timeout: float | None) -> None:
    import math_verify  # noqa: F401  (pay the import once, before the first deadline starts)

    verifier = Verifier(timeout=timeout)
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message is None:
            return
        known_bad, batch = message
        verifier.pathological.update(known_bad)  # found by other workers: never pay their timeout twice
        for index, answers in batch:
            before = set(verifier.pathological)
            result = job.run(answers, verifier)
            conn.send((index, result, verifier.pathological - before))


@dataclass
class _Slot:
    process: mp.Process
    conn: Connection
    pending: deque  # tasks sent, not yet answered
    since: float = 0.0  # when the oldest pending task became the one in progress
    bad_seen: int = 0  # how much of the pool's pathological list this worker has been sent


class VerifyPool:
    """``map`` runs ``job`` on (index, answers) tasks in ``workers`` processes; results come unordered."""

    def __init__(
        self,
        job: Job,
        workers: int,
        timeout: float | None,
        soft_limits: bool = True,
        grace: float = 5.0,
        start: bool = True,
    ):
        """``soft_limits=False`` leaves only the watchdog (tests use it to exercise the kill path);
        ``grace`` is the watchdog's slack on top of the per-step budget; ``start=False`` defers
        starting the workers to ``start()``."""
        self.job, self.workers, self.timeout = job, max(1, workers), timeout
        self.soft_limits, self.grace, self._autostart = soft_limits, grace, start
        self.hard_timeouts = 0
        self._ctx = mp.get_context("spawn")  # fork after polars/arrow threads start is unsafe
        self._slots: list[_Slot] = []
        self._waiting = True
        self._bad: list[str] = []  # pathological answer keys found by any worker

    def __enter__(self) -> VerifyPool:
        if self._autostart:
            self.start()
        return self

    def start(self) -> None:
        """Spawn the workers; they signal readiness once math-verify is imported (awaited lazily)."""
        self._slots = [self._start() for _ in range(self.workers)]

    def __exit__(self, *exc) -> None:
        for slot in self._slots:
            with contextlib.suppress(OSError):
                slot.conn.send(None)
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.kill()

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(
            target=_worker, args=(child, self.job, self.timeout if self.soft_limits else None), daemon=True
        )
        process.start()
        child.close()
        return _Slot(process, parent, deque())

    @staticmethod
    def _ready(slot: _Slot) -> None:
        try:
            slot.conn.recv()  # "ready": imports done, deadlines start now
        except EOFError:
            raise RuntimeError(
                f"a labeling worker died at start (exit code {slot.process.exitcode})"
            ) from None

    def _deadline(self, task: Task) -> float:
        if not self.timeout:
            return float("inf")
        return self.timeout * (len({a for a in task[1] if a is not None}) + 2) + self.grace

    def _send(self, slot: _Slot, batch: list[Task]) -> None:
        slot.pending.extend(batch)
        slot.conn.send((self._bad[slot.bad_seen :], batch))
        slot.bad_seen = len(self._bad)

    def _feed(self, slot: _Slot, tasks: Iterator[Task]) -> None:
        batch = [task for _, task in zip(range(BATCH), tasks)]
        if batch:
            if not slot.pending:
                slot.since = time.monotonic()
            self._send(slot, batch)

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[int, object]]:
        if self._waiting:
            for slot in self._slots:
                self._ready(slot)
            self._waiting = False
        tasks = iter(tasks)
        for slot in self._slots:
            self._feed(slot, tasks)
        while any(slot.pending for slot in self._slots):
            busy = [slot for slot in self._slots if slot.pending]
            ready = wait([slot.conn for slot in busy], timeout=1.0)
            for slot in busy:
                if slot.conn in ready:
                    index, result, bad = slot.conn.recv()
                    self._bad += sorted(bad - set(self._bad))
                    slot.pending.popleft()
                    slot.since = time.monotonic()
                    yield index, result
                    if len(slot.pending) < BATCH // 2:
                        self._feed(slot, tasks)
                elif time.monotonic() - slot.since > self._deadline(slot.pending[0]):
                    yield from self._replace(slot, tasks)

    def _replace(self, slot: _Slot, tasks: Iterator[Task]) -> Iterator[tuple[int, object]]:
        """Kill a stuck worker, give its current task the job's fallback, resend the rest."""
        slot.process.kill()
        slot.process.join()
        self.hard_timeouts += 1
        stuck, rest = slot.pending[0], list(slot.pending)[1:]
        yield stuck[0], self.job.fallback(stuck[1])
        fresh = self._start()
        self._ready(fresh)
        self._slots[self._slots.index(slot)] = fresh
        if rest:
            fresh.since = time.monotonic()
            self._send(fresh, rest)
        else:
            self._feed(fresh, tasks)
