"""A process pool for labeling questions, with a watchdog that kills a stuck worker.

Each worker labels questions on its main thread (so the per-step ``setitimer`` alarm works) and reports
after every question. The parent gives each question a hard deadline of ``timeout * (distinct answers
+ 2)`` seconds; a worker that misses it is stuck in C code no signal can interrupt (a huge integer power,
say). It is killed and replaced, that question is labeled by identical strings only (counted as
``hard_timeouts``), and the rest of its batch goes to the new worker. Nothing can stall the run.
"""

from __future__ import annotations

import multiprocessing as mp
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from .cluster import label_group
from .equivalence import QuestionResult, Verifier, label_question

Task = tuple[int, list[str | None]]  # (question index, answers)
BATCH = 32


def _worker(conn: Connection, timeout: float | None, all_pairs: bool) -> None:
    import math_verify  # noqa: F401  (pay the import once, before the first deadline starts)

    verifier = Verifier(timeout=timeout)
    conn.send(("ready", None))
    while True:
        batch = conn.recv()
        if batch is None:
            return
        for index, answers in batch:
            conn.send((index, label_question(answers, verifier, all_pairs=all_pairs)))


def identity_only(answers: list[str | None]) -> QuestionResult:
    """Fallback for a question whose worker had to be killed: identical strings vote together."""
    return QuestionResult(label_group(answers, lambda a, b: False), list(answers), 0)


@dataclass
class _Slot:
    process: mp.Process
    conn: Connection
    pending: deque  # tasks sent, not yet answered
    since: float = 0.0  # when the oldest pending task became the one in progress


class LabelPool:
    """``map`` labels (index, answers) tasks on ``workers`` processes; results come back unordered."""

    def __init__(
        self, workers: int, timeout: float | None, all_pairs: bool = False, soft_limits: bool = True
    ):
        """``soft_limits=False`` leaves only the watchdog (tests use it to exercise the kill path)."""
        self.workers, self.timeout, self.all_pairs = max(1, workers), timeout, all_pairs
        self.soft_limits = soft_limits
        self.hard_timeouts = 0
        self._ctx = mp.get_context("spawn")  # fork after polars/arrow threads start is unsafe
        self._slots: list[_Slot] = []

    def __enter__(self) -> LabelPool:
        self._slots = [self._start() for _ in range(self.workers)]
        for slot in self._slots:
            self._ready(slot)
        return self

    def __exit__(self, *exc) -> None:
        for slot in self._slots:
            try:
                slot.conn.send(None)
            except OSError:
                pass
            slot.process.join(timeout=5)
            if slot.process.is_alive():
                slot.process.kill()

    def _start(self) -> _Slot:
        parent, child = self._ctx.Pipe()
        process = self._ctx.Process(target=_worker, args=(child, self.timeout if self.soft_limits else None, self.all_pairs), daemon=True)
        process.start()
        child.close()
        return _Slot(process, parent, deque())

    @staticmethod
    def _ready(slot: _Slot) -> None:
        try:
            slot.conn.recv()  # "ready": imports done, deadlines start now
        except EOFError:
            raise RuntimeError(f"a labeling worker died at start (exit code {slot.process.exitcode})") from None

    def _deadline(self, task: Task) -> float:
        if not self.timeout:
            return float("inf")
        return self.timeout * (len({a for a in task[1] if a is not None}) + 2) + 5.0

    def _feed(self, slot: _Slot, tasks: Iterator[Task]) -> None:
        batch = [task for _, task in zip(range(BATCH), tasks)]
        if batch:
            if not slot.pending:
                slot.since = time.monotonic()
            slot.pending.extend(batch)
            slot.conn.send(batch)

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[int, QuestionResult]]:
        tasks = iter(tasks)
        for slot in self._slots:
            self._feed(slot, tasks)
        while any(slot.pending for slot in self._slots):
            busy = [slot for slot in self._slots if slot.pending]
            ready = wait([slot.conn for slot in busy], timeout=1.0)
            for slot in busy:
                if slot.conn in ready:
                    index, result = slot.conn.recv()
                    slot.pending.popleft()
                    slot.since = time.monotonic()
                    yield index, result
                    if len(slot.pending) < BATCH // 2:
                        self._feed(slot, tasks)
                elif time.monotonic() - slot.since > self._deadline(slot.pending[0]):
                    yield from self._replace(slot, tasks)

    def _replace(self, slot: _Slot, tasks: Iterator[Task]) -> Iterator[tuple[int, QuestionResult]]:
        """Kill a stuck worker, label its current question by identity, resend the rest."""
        slot.process.kill()
        slot.process.join()
        self.hard_timeouts += 1
        stuck, rest = slot.pending[0], list(slot.pending)[1:]
        yield stuck[0], identity_only(stuck[1])
        fresh = self._start()
        self._ready(fresh)
        self._slots[self._slots.index(slot)] = fresh
        if rest:
            fresh.since = time.monotonic()
            fresh.pending.extend(rest)
            fresh.conn.send(rest)
        else:
            self._feed(fresh, tasks)
