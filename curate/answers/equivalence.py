"""Answer equivalence with math-verify, every parse and verify bounded in time.

Every step runs under ``limits.time_limit``, an alarm math-verify cannot swallow, so a pathological
answer is *known* to have timed out: it is counted, and its traces get no answer. A distinct answer is
read once (cache), and an answer or a pair that timed out once is never tried again.

Reading an answer is parsing it *and evaluating it on its own* (``doit``, and ``evalf`` for a number),
the two steps math-verify's comparisons apply to each side. An answer that cannot be evaluated within the
limit (``10^{10^{10}}``, thirty nested fractions) is pathological wherever it occurs: its traces get no
answer. That is a property of the answer alone, so it is paid for once per run, not once per partner
it is compared with, and no label depends on the order questions run in.

The jobs (``LabelQuestion`` for vote, ``ScoreAgainstGold`` for base rollouts and eval) run in worker
processes (see ``pool.py``), always on the process's main thread, as signals require.
"""

from __future__ import annotations

import logging
import pickle
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .cluster import GroupLabel, distinct_answers, label_group, naive_calls
from .extract import answer_key
from .fastpaths import read_fast, verify_fast
from .limits import AnswerTimeout, time_limit

MAX_ANSWER_CHARS = 1000  # longer "answers" are garbage inside \boxed{}: never handed to sympy
DEFAULT_TIMEOUT = 2.0

logging.getLogger("math_verify").setLevel(logging.ERROR)  # it warns once that we time out ourselves


class Pathological(Exception):
    """An answer that timed out (or is absurdly long): its traces get no answer."""

    def __init__(self, answer: str):
        super().__init__(answer)
        self.answer = answer


@dataclass
class Verifier:
    """Reads each distinct answer once and tests equivalence in both directions, each step bounded.

    ``cached=False`` is the naive reference (the benchmark's baseline): every reading and every
    comparison is done again. Both give identical results, since parse and verify are deterministic.

    What timed out is remembered at the grain it is known: reading (parse + evaluation) depends on the
    answer alone, so an answer that could not be read is slow everywhere; a verify depends on both answers
    and on their order (``\\sin(x)^{400}+\\cos(x)^{400}`` times out against ``5`` but not against ``B``),
    so only that (gold, target) direction is slow. Treating the answer as slow everywhere would drop it
    from questions where math-verify decides within the limit, and the labels would depend on the order
    questions ran in.
    """

    timeout: float | None = DEFAULT_TIMEOUT
    cached: bool = True
    cache_size: int = 20_000  # per cache: ~1 KB a parsed answer, so a worker stays near 20 MB of cache
    timeouts: int = 0
    reads: int = 0  # answers read (parsed and evaluated), cache hits and adopted parses not counted
    fast_reads: int = 0  # of those, read by an exact fast path (``fastpaths``) instead of math-verify's parse
    _parsed: OrderedDict[str, list] = field(default_factory=OrderedDict)
    _directions: OrderedDict[tuple[str, str], bool] = field(default_factory=OrderedDict)
    slow: set[str | tuple[str, str]] = field(default_factory=set)  # keys (unreadable), (gold, target) keys
    found: list[str | tuple[str, str]] = field(default_factory=list)  # slow items not yet shared (pool)
    share: bool = False  # pool workers: export what they read, so no other worker parses it again
    exported: list[tuple[str, bytes]] = field(default_factory=list)  # read answers not yet shared (pool)

    def parse(self, answer: str) -> list:
        key = answer_key(answer)
        if key in self.slow or len(key) > MAX_ANSWER_CHARS:
            raise Pathological(answer)
        if key in self._parsed:
            return _recall(self._parsed, key)
        from math_verify import parse  # here, not above: an import statement costs ~10 us a cache hit

        fast = read_fast(key) if self.cached else None  # the naive reference is plain math-verify
        try:
            with time_limit(self.timeout):
                parsed = fast or parse(as_math(key), parsing_timeout=None)  # a function of the key alone
                _evaluate(parsed)
        except AnswerTimeout:
            self._mark(key)
            raise Pathological(answer) from None
        self.reads += 1
        self.fast_reads += fast is not None
        if self.cached:
            _remember(self._parsed, key, parsed, self.cache_size)
            if self.share and fast is None and (blob := _portable(parsed)) is not None:
                self.exported.append((key, blob))  # a fast read is cheaper to redo than to share
        return parsed

    def adopt(self, read: Sequence[tuple[str, bytes]]) -> None:
        """Take answers another worker has read (``exported``) into the cache: a parse is ~3 ms of ANTLR,
        and every worker meets nearly every common answer, so without this each one parses it again."""
        for key, blob in read:
            if key not in self._parsed:
                _remember(self._parsed, key, pickle.loads(blob), self.cache_size)

    def equivalent(self, a: str, b: str) -> bool:
        """``verify(a -> b)``, else ``verify(b -> a)`` (vote's symmetric relation); ``Pathological`` blaming
        the longer one (the first on equal length) when a step times out. verify is not symmetric."""
        parsed: dict[str, list] = {}  # read once per call, as the naive path
        return self._holds(a, b, (a, b), parsed) or self._holds(b, a, (a, b), parsed)

    def holds(self, gold: str, target: str) -> bool:
        """``verify(gold, target)``, one direction (correctness against a gold); ``Pathological`` as in
        ``equivalent``."""
        return self._holds(gold, target, (gold, target), {})

    def _holds(self, gold: str, target: str, pair: tuple[str, str], parsed: dict[str, list]) -> bool:
        direction = (answer_key(gold), answer_key(target))
        if direction in self.slow:
            raise Pathological(_longer(*pair))
        if direction in self._directions:
            return _recall(self._directions, direction)
        if not parsed:
            parsed.update({a: self.parse(a) for a in pair})
        holds = self._verify(direction, parsed[gold], parsed[target])
        if holds is None:
            raise Pathological(_longer(*pair))
        return holds

    def times_out(self, a: str, b: str) -> bool:
        """Whether ``equivalent(a, b)`` is already known to time out, without calling math-verify."""
        for gold, target in ((a, b), (b, a)):
            direction = (answer_key(gold), answer_key(target))
            if direction in self.slow:
                return True
            if self._directions.get(direction) is not False:  # holds, or not known
                return False
        return False

    def _verify(self, direction: tuple[str, str], gold: list, target: list) -> bool | None:
        """``verify(gold, target)`` within the time limit; ``None`` when it ran past it."""
        from math_verify import verify

        if not gold or not target:
            holds = False
        elif self.cached and _plain_integer(gold) and _plain_integer(target):
            holds = gold[0] == target[0]  # what verify concludes, ~100x faster (tested)
        elif self.cached and (known := verify_fast(gold, target)) is not None:
            holds = known  # what verify concludes, ~200x faster (tests/test_fastpaths.py)
        else:
            try:
                with time_limit(self.timeout):
                    holds = bool(verify(gold, target, timeout_seconds=None))
            except AnswerTimeout:
                self._mark(direction)
                return None
        if self.cached:
            _remember(self._directions, direction, holds, self.cache_size)
        return holds

    def _mark(self, item: str | tuple[str, str]) -> None:
        self.timeouts += 1
        if self.cached:
            self.slow.add(item)
            self.found.append(item)
            _drop_partial_results()


def as_math(answer: str) -> str:
    """The text math-verify is given for an answer: ``$answer$``, or ``\\boxed{answer}`` where inline math
    cannot hold it (a ``$`` or a line break inside). Both read the content as a trace's box is read;
    ``$...$`` also lets math-verify fall back to the number in a stated answer such as ``104.``."""
    return f"\\boxed{{{answer}}}" if "$" in answer or "\n" in answer else f"${answer}$"


def _portable(parsed: list) -> bytes | None:
    """``parsed`` pickled, if unpickling rebuilds the identical expression tree; else ``None``.

    Not every parse survives the trip: math-verify leaves ``\\sqrt{128}`` unevaluated, and unpickling
    rebuilds it evaluated (``8*sqrt(2)``); it keeps ``x+1`` as ``(x, 1)``, unpickling sorts it to
    ``(1, x)``, and verify's answer can differ between the two. What comes back must pickle to the same
    bytes (same types and arguments, in order, recursively) and compare equal, so a shared parse is the
    tree this worker verifies with (~0.07 ms a check; 99% of the benchmark corpus's answers pass)."""
    try:
        blob = pickle.dumps(parsed)
        back = pickle.loads(blob)
        same = pickle.dumps(back) == blob and len(back) == len(parsed)
        same = same and all(type(a) is type(b) and a == b for a, b in zip(parsed, back))
    except Exception:  # noqa: BLE001 - anything that does not survive is simply parsed again elsewhere
        return None
    return blob if same else None


def _evaluate(parsed: list) -> None:
    """Evaluate each parsed form on its own, as math-verify's comparisons do: ``safe_sympy_doit`` (a power
    tower explodes there) and, for a number, ``evalf`` of the form as written (met inside ``simplify`` and
    the numeric comparison; thirty nested fractions explode there). Errors are math-verify's business (it
    catches them); only running out of time counts here. ~0.03 ms for an ordinary answer (measured)."""
    for form in parsed:
        if isinstance(form, str) or not hasattr(form, "doit"):
            continue
        try:
            form.doit()
            if getattr(form, "is_number", False):
                form.evalf(15)
        except Exception:  # noqa: BLE001 - AnswerTimeout is a BaseException and passes through
            pass


def _drop_partial_results() -> None:
    """An aborted computation leaves its finished parts in sympy's cache: ``9^{9^{9^{9}}}`` against a set
    leaves ~100 MB of huge numbers there (measured), which a long-running worker would otherwise keep,
    and pile up, for the rest of the run. The cache is only a memo: results do not change."""
    from sympy.core.cache import clear_cache

    clear_cache()


def _longer(a: str, b: str) -> str:
    """The side a verify timeout is blamed on (the first on equal length), dropped from the question."""
    return max((a, b), key=lambda s: len(answer_key(s)))


def _plain_integer(parsed: list) -> bool:
    import sympy

    return len(parsed) == 2 and isinstance(parsed[0], sympy.Integer) and isinstance(parsed[1], str)


def _remember(cache: OrderedDict, key, value, size: int) -> None:
    if len(cache) >= size:
        cache.popitem(last=False)  # least recently used first (see ``_recall``)
    cache[key] = value


def _recall(cache: OrderedDict, key):
    """A hit moves the entry to the young end, so answers common across questions stay cached."""
    cache.move_to_end(key)
    return cache[key]


@dataclass(frozen=True)
class QuestionResult:
    """A labeled question plus the answers actually used (pathological ones set to None)."""

    label: GroupLabel
    answers: list[str | None]
    pathological: int


def label_question(
    answers: Sequence[str | None], verifier: Verifier, all_pairs: bool = False
) -> QuestionResult:
    """Label one question; an answer that times out is dropped (its traces get no answer) and the
    vote is taken again, so the result is the vote over the answers that could be checked."""
    answers = list(answers)
    dropped = 0
    while True:
        try:
            for answer in answers:
                if answer is not None:
                    verifier.parse(answer)
            if not all_pairs and (shortcut := _drop_known_slow(answers, verifier)) is not None:
                rest, label = shortcut
                return QuestionResult(label, rest, dropped + _count(answers) - _count(rest))
            return QuestionResult(label_group(answers, verifier.equivalent, all_pairs), answers, dropped)
        except Pathological as bad:
            key = answer_key(bad.answer)
            before = _count(answers)
            answers = [None if a is not None and answer_key(a) == key else a for a in answers]
            dropped += before - _count(answers)


def _count(answers: Sequence[str | None]) -> int:
    return sum(a is not None for a in answers)


def _drop_known_slow(
    answers: list[str | None], verifier: Verifier
) -> tuple[list[str | None], GroupLabel] | None:
    """The naive path's result without paying a timeout again, when it is certain: if a comparison the
    naive scan makes is already known to time out, its blamed answer (``_longer``) is blamed by every
    comparison the scan makes with it, and the other answers compare without a timeout, then the scan's
    first timeout, whichever comparison that is, drops exactly that answer. ``None`` when that does not
    hold (the ordinary scan then decides)."""
    forms, which = distinct_answers(answers)
    calls = naive_calls(which)
    known = next(((i, j) for i, j in calls if verifier.times_out(forms[i], forms[j])), None)
    if known is None:
        return None
    lengths = [len(answer_key(f)) for f in forms]

    def blamed(call: tuple[int, int]) -> int:
        return call[0] if lengths[call[0]] >= lengths[call[1]] else call[1]

    slow = blamed(known)
    if any(blamed(call) != slow for call in calls if slow in call):
        return None
    key = answer_key(forms[slow])
    rest = [None if a is not None and answer_key(a) == key else a for a in answers]
    try:
        return rest, label_group(rest, verifier.equivalent)
    except Pathological:
        return None


class Job(Protocol):
    """What a pool worker runs on one task's answers; ``fallback`` is used if the worker must be killed."""

    def run(self, answers: list[str | None], verifier: Verifier): ...

    def fallback(self, answers: list[str | None]): ...


@dataclass(frozen=True)
class LabelQuestion:
    """Majority vote of one question (``all_pairs`` = the naive all-pairs reference)."""

    all_pairs: bool = False

    def run(self, answers: list[str | None], verifier: Verifier) -> QuestionResult:
        return label_question(answers, verifier, all_pairs=self.all_pairs)

    def fallback(self, answers: list[str | None]) -> QuestionResult:
        return QuestionResult(label_group(answers, lambda a, b: False), list(answers), 0)


@dataclass(frozen=True)
class ScoreAgainstGold:
    """``answers[0]`` is the reference; each other answer scores 1.0 when math-verify's
    ``verify(gold, answer)`` holds (one direction: gold ``5 = 2a + b`` does not make ``2a + b`` right, nor
    gold ``(4, 2)`` the set ``\\{2, 4\\}``), or when its key is the gold's, else 0.0."""

    def run(self, answers: list[str | None], verifier: Verifier) -> list[float]:
        gold, rest = answers[0], answers[1:]
        return [self._score(gold, a, verifier) for a in rest]

    @staticmethod
    def _score(gold: str | None, answer: str | None, verifier: Verifier) -> float:
        if gold is None or answer is None:
            return 0.0
        if answer_key(gold) == answer_key(answer):
            return 1.0
        try:
            return float(verifier.holds(gold, answer))
        except Pathological:
            return 0.0

    def fallback(self, answers: list[str | None]) -> list[float]:
        gold = answers[0]
        return [
            float(a is not None and gold is not None and answer_key(a) == answer_key(gold))
            for a in answers[1:]
        ]
