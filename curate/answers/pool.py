"""A process pool for math-verify work, with a watchdog that kills a stuck worker.

    with VerifyPool(LabelQuestion(), workers=2, timeout=2.0) as pool:
        for index, result in pool.map((i, answers) for i, answers in enumerate(questions)):
            ...

A task is ``(index, answers)``; a *job* (``LabelQuestion`` for vote, ``ScoreAgainstGold`` for base
rollouts and eval) turns the answers into a result. Each worker runs jobs on its main thread (so the
per-step ``setitimer`` alarm works) and reports after every task. The parent gives each task a deadline
of ``timeout * (distinct answers + 2) + 5`` seconds; a worker that misses it is stuck in C code no
signal can interrupt (a huge integer power, say). It is killed and replaced, that task gets the job's
string-identity fallback (counted as ``hard_timeouts``), and the rest of its batch goes to the new
worker. Nothing can stall the run.

A timeout costs a core ``timeout`` seconds, and whether a parse or a pair times out is only known by
trying it. What timed out is shared with every worker (``Verifier.slow``), and the ``_Gate`` keeps two
workers from trying the same new answer at once, so a slow parse or pair is paid for once per run, not
once per worker (``timeouts`` counts what was paid). What was read is shared the same way (pickled
parses, ``Verifier.adopt``): a parse is ~3 ms of ANTLR, and every worker meets nearly every common answer.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait

from .equivalence import Job, Verifier
from .extract import answer_key

Task = tuple[Hashable, list[str | None]]  # (task index, answers)
BATCH = 8  # small: a worker queued behind a timeout holds few tasks back at the end of a run
HELD = 4 * BATCH  # tasks held back by the gate at most; beyond, the pool waits for results instead
# Shared reads one message carries at most. A worker leaves at most ~4 messages unread (a slot is fed
# below BATCH // 2 pending tasks), and the parent must never block on a full pipe: a blocked parent
# checks no deadline, so a worker stuck in C code would stall the run. 4 x 16 KB is far below the
# ~200 KB a socket pair buffers; the rest of the log goes with later batches.
READS_PER_MESSAGE = 16_000  # bytes
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent: int) -> None:
    """Have Linux SIGKILL this worker when its parent dies, ``kill -9`` included (``PR_SET_PDEATHSIG``).

    A worker blocked on a queue its siblings also hold never sees end-of-file, so without this the workers
    of a killed ``vote`` (and the resource tracker they keep alive) live on. Call it first in a worker
    (``initializer`` of a process pool); ``parent`` is the parent's pid, read before the worker started.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)


def _worker(conn: Connection, job: Job, timeout: float | None, parent: int) -> None:
    die_with_parent(parent)
    import math_verify  # noqa: F401  (pay the import once, before the first deadline starts)

    verifier = Verifier(timeout=timeout, share=True)
    # Warm up ANTLR (its first parse builds the parser, ~0.2 s) and sympy's evaluation: with fast paths
    # the first parse may be any answer's, and its time limit is not the place to pay this.
    Verifier(timeout=None, cached=False).parse("\\frac{x^2+1}{2}")
    conn.send(("ready", None))
    while True:
        message = conn.recv()
        if message is None:
            return
        known_slow, known_read, batch = message
        verifier.slow.update(known_slow)  # found by other workers: never pay their timeout twice
        verifier.adopt(known_read)  # read by other workers: never parse it twice
        for index, answers in batch:
            before = verifier.timeouts, verifier.reads, verifier.fast_reads
            result = job.run(answers, verifier)
            found, verifier.found = verifier.found, []
            read, verifier.exported = verifier.exported, []
            after = verifier.timeouts, verifier.reads, verifier.fast_reads
            conn.send((index, result, found, [b - a for a, b in zip(before, after)], read))


def _keys(task: Task) -> set[str]:
    return {answer_key(a) for a in task[1] if a is not None}


class _Gate:
    """Lets the first task holding a new answer key *probe* it: until that task is back, other tasks with
    the key go to the same worker (whose verifier then knows if it timed out) or wait. Once back, the key
    is settled; a timeout found is in the pool's list of slow items, sent with every later batch."""

    def __init__(self, memory: int = 100_000):
        self._probing: dict[str, int] = {}  # key -> worker slot trying it for the first time
        self._settled: OrderedDict[str, None] = OrderedDict()  # bounded: a forgotten key is probed again
        self._memory = memory

    def allows(self, keys: set[str], slot: int) -> bool:
        return all(self._probing.get(key, slot) == slot for key in keys)

    def take(self, keys: set[str], slot: int) -> None:
        for key in keys:
            if key in self._settled:
                self._settled.move_to_end(key)
            else:
                self._probing.setdefault(key, slot)

    def settle(self, keys: set[str]) -> None:
        for key in keys:
            self._probing.pop(key, None)
            self._settled[key] = None
            self._settled.move_to_end(key)
        while len(self._settled) > self._memory:
            self._settled.popitem(last=False)


@dataclass
class _Slot:
    process: mp.Process
    conn: Connection
    pending: deque  # tasks sent, not yet answered
    since: float = 0.0  # when the oldest pending task became the one in progress
    slow_seen: int = 0  # how much of the pool's list of slow items this worker has been sent
    read_seen: int = 0  # position in the pool's log of read answers up to which it has been sent


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
        self.timeouts = 0  # math-verify steps that ran past ``timeout`` in the workers
        self.reads = 0  # answers the workers read (parse + evaluation), not counting cache hits
        self.fast_reads = 0  # of those, read by an exact fast path (``fastpaths``)
        self._ctx = mp.get_context("spawn")  # fork after polars/arrow threads start is unsafe
        self._slots: list[_Slot] = []
        self._waiting = True
        self._slow: list[str | tuple[str, str]] = []  # slow parses and pairs found by any worker
        self._slow_set: set[str | tuple[str, str]] = set()
        self._gate = _Gate()
        self._read: list[tuple[str, bytes, _Slot]] = []  # (key, pickled parse, slot that read it)
        self._read_base = 0  # log position of ``_read[0]``; what every slot has passed is dropped
        self._held: list[tuple[Task, set[str]]] = []  # tasks the gate holds back, in arrival order
        self._tasks: Iterator[Task] = iter(())

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
            target=_worker,
            args=(child, self.job, self.timeout if self.soft_limits else None, os.getpid()),
            daemon=True,
        )
        process.start()
        child.close()
        return _Slot(process, parent, deque(), read_seen=self._read_base)

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

    def _send(self, n: int, batch: list[Task]) -> None:
        slot = self._slots[n]
        if not slot.pending:
            slot.since = time.monotonic()
        slot.pending.extend(batch)
        slot.conn.send((self._slow[slot.slow_seen :], self._reads_for(n), batch))
        slot.slow_seen = len(self._slow)
        passed_by_all = min(other.read_seen for other in self._slots) - self._read_base
        if passed_by_all > 1024:  # drop the log's head in chunks: parsed answers are ~100 B pickled
            del self._read[:passed_by_all]
            self._read_base += passed_by_all

    def _reads_for(self, n: int) -> list[tuple[str, bytes]]:
        """The next part of the log slot ``n`` has not passed, up to ``READS_PER_MESSAGE`` bytes; its own
        reads are skipped (it has them; a replacement worker is another slot and gets them)."""
        slot, reads, size = self._slots[n], [], 0
        position = slot.read_seen - self._read_base
        while position < len(self._read) and size < READS_PER_MESSAGE:
            key, blob, source = self._read[position]
            position += 1
            if source is not slot:
                reads.append((key, blob))
                size += len(key) + len(blob)
        slot.read_seen = self._read_base + position
        return reads

    def _feed(self, n: int) -> None:
        """Send slot ``n`` a batch: held tasks the gate now allows first, then new ones from the stream."""
        batch, still_held = [], []
        for task, keys in self._held:
            if len(batch) < BATCH and self._gate.allows(keys, n):
                self._gate.take(keys, n)
                batch.append(task)
            else:
                still_held.append((task, keys))
        self._held = still_held
        while len(batch) < BATCH and len(self._held) < HELD:
            task = next(self._tasks, None)
            if task is None:
                break
            keys = _keys(task)
            if self._gate.allows(keys, n):
                self._gate.take(keys, n)
                batch.append(task)
            else:
                self._held.append((task, keys))
        if batch:
            self._send(n, batch)

    def map(self, tasks: Iterable[Task]) -> Iterator[tuple[Hashable, object]]:
        if self._waiting:
            for slot in self._slots:
                self._ready(slot)
            self._waiting = False
        self._tasks = iter(tasks)
        for n in range(len(self._slots)):
            self._feed(n)
        while any(slot.pending for slot in self._slots):
            busy = [n for n, slot in enumerate(self._slots) if slot.pending]
            ready = wait([self._slots[n].conn for n in busy], timeout=1.0)
            for n in busy:
                slot = self._slots[n]
                if slot.conn in ready:
                    index, result, found, (timeouts, reads, fast), read = slot.conn.recv()
                    self._read += [(key, blob, slot) for key, blob in read]
                    self._slow += [item for item in found if item not in self._slow_set]
                    self._slow_set.update(found)
                    self.timeouts += timeouts
                    self.reads += reads
                    self.fast_reads += fast
                    self._gate.settle(_keys(slot.pending.popleft()))
                    slot.since = time.monotonic()
                    yield index, result
                elif time.monotonic() - slot.since > self._deadline(slot.pending[0]):
                    yield from self._replace(n)
            for n, slot in enumerate(self._slots):
                if len(slot.pending) < BATCH // 2:
                    self._feed(n)

    def _replace(self, n: int) -> Iterator[tuple[Hashable, object]]:
        """Kill a stuck worker, give its current task the job's fallback, resend the rest."""
        slot = self._slots[n]
        slot.process.kill()
        slot.process.join()
        self.hard_timeouts += 1
        stuck, rest = slot.pending[0], list(slot.pending)[1:]
        self._gate.settle(_keys(stuck))
        yield stuck[0], self.job.fallback(stuck[1])
        fresh = self._start()
        self._ready(fresh)
        self._slots[n] = fresh
        if rest:
            self._send(n, rest)
