"""Score one problem's k sampled answers against its gold: per-sample correctness, pass@1, maj@k.

    from offcurate.curate.answers.equivalence import Verifier
    score = ScoreProblem().run([gold, *answers], Verifier(timeout=2.0))
    score.correct, score.pass_at_1, score.maj_at_k

Correctness is ``ScoreAgainstGold``: identical keys, or math-verify's ``verify(gold, answer)``, one
direction (``vote``, without a gold, takes either direction). maj@k takes the same clustering as ``vote``
(``label_question``): the largest class of equivalent answers, equal sizes broken by first appearance
(cluster 0, even on a tie), represented by its most written form as in ``vote``'s ``majority_answer``; maj@k
is 1 when that answer is correct. An answer that times out (or is absurdly long) costs only its timeout: it
is wrong, and it is equivalent to nothing but copies of itself. Unlike ``vote``, which drops it, eval keeps
it in the vote as its own class: a model that keeps writing one unverifiable answer has that as its
majority, and maj@k is 0. ``ScoreProblem`` is a pool job (``pool.VerifyPool``): the watchdog also covers a
worker stuck in C code.

``LabelWithGold`` is ``vote``'s job on a set that ships gold answers: the vote exactly as without a gold
(``label_question``), plus each trace's ``verify(gold, answer)`` (one direction, as here) and whether the
majority answer is right, so the pseudo-label's accuracy can be measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from .cluster import OK, Equivalent, GroupLabel, label_group, most_written
from .equivalence import (
    LabelQuestion,
    Pathological,
    QuestionResult,
    ScoreAgainstGold,
    Verifier,
    label_question,
)
from .extract import answer_key


@dataclass(frozen=True)
class ProblemScore:
    """One problem's result; lists follow the order of the answers given."""

    correct: list[bool]  # per sample: equivalent to the gold
    status: str  # the vote's status: ok, tie (cluster 0 still taken) or no_answer
    majority_answer: str | None  # most written form of cluster 0; None when no sample has an answer
    maj_at_k: float  # 1.0 when the majority answer is correct
    pathological: int  # samples whose answer timed out (each is wrong, and its own class in the vote)

    @property
    def pass_at_1(self) -> float | None:
        """Mean correctness over the k samples (None for k = 0)."""
        return sum(self.correct) / len(self.correct) if self.correct else None


def problem_score(
    correct: list[bool], label: GroupLabel, answers: list[str | None], pathological: int
) -> ProblemScore:
    """Combine per-sample correctness with the vote over the (checkable) answers."""
    if 0 not in label.clusters:
        return ProblemScore(correct, label.status, None, 0.0, pathological)
    majority = most_written(answers, label.clusters)
    maj_correct = correct[answers.index(majority)]
    return ProblemScore(correct, label.status, majority, float(maj_correct), pathological)


def bounded(verifier: Verifier, bad: set[str]) -> Equivalent:
    """``verifier.equivalent`` where an answer that times out is equivalent to nothing (its key is
    added to ``bad``); identical strings are still one class, as ``label_group`` joins them first."""

    def equivalent(a: str, b: str) -> bool:
        try:
            return verifier.equivalent(a, b)
        except Pathological as err:
            bad.add(answer_key(err.answer))
            return False

    return equivalent


def _timed_out_keys(verifier: Verifier, gold: str | None) -> set[str]:
    """Answer keys whose parse timed out, or whose comparison with ``gold`` did (either direction)."""
    gold_key = answer_key(gold) if gold is not None else None
    keys = set()
    for item in verifier.slow:
        if isinstance(item, str):
            keys.add(item)
        elif gold_key in item:
            keys.update(k for k in item if k != gold_key)
    return keys


@dataclass(frozen=True)
class ScoreProblem:
    """Pool job: ``answers[0]`` is the gold, the rest are the k samples' answers (None: no answer)."""

    def run(self, answers: list[str | None], verifier: Verifier) -> ProblemScore:
        samples = answers[1:]
        correct = [s == 1.0 for s in ScoreAgainstGold().run(answers, verifier)]
        bad: set[str] = set()
        label = label_group(samples, bounded(verifier, bad))
        known = _timed_out_keys(verifier, answers[0])
        pathological = sum(
            a is not None and (answer_key(a) in bad or answer_key(a) in known) for a in samples
        )
        return problem_score(correct, label, samples, pathological)

    def fallback(self, answers: list[str | None]) -> ProblemScore:
        """After the watchdog killed a worker: string identity only, for both correctness and the vote."""
        correct = [s == 1.0 for s in ScoreAgainstGold().fallback(answers)]
        return problem_score(correct, label_group(answers[1:], lambda a, b: False), answers[1:], 0)


GOLD_OK, GOLD_MISSING, GOLD_UNREADABLE = "ok", "missing", "unreadable"


def gold_status(gold: str | None, verifier: Verifier) -> str:
    """``ok`` when math-verify reads the gold as mathematics; ``unreadable`` when it times out or yields
    only text (``\\frac{3}{``: a truncated or broken gold scores nothing and proves nothing), else
    ``missing``."""
    if gold is None:
        return GOLD_MISSING
    try:
        parsed = verifier.parse(gold)
    except Pathological:
        return GOLD_UNREADABLE
    return GOLD_OK if len(parsed) >= 2 else GOLD_UNREADABLE


@dataclass(frozen=True)
class GoldResult(QuestionResult):
    """A vote result plus, when the gold is readable (``gold_status`` ok), each trace's gold reward
    (1.0 when ``verify(gold, answer)`` holds, 0.0 otherwise or without an answer) and whether the majority
    answer is right (None unless the vote's status is ok)."""

    gold_status: str = GOLD_MISSING
    gold_rewards: list[float] | None = None
    gold_agrees: bool | None = None


def _with_gold(result: QuestionResult, status: str, rewards: list[float] | None) -> GoldResult:
    agrees = None
    if rewards is not None and result.label.status == OK:
        agrees = rewards[result.answers.index(result.label.majority_answer)] == 1.0
    if status != GOLD_OK:
        rewards = None
    return GoldResult(result.label, result.answers, result.pathological, status, rewards, agrees)


@dataclass(frozen=True)
class LabelWithGold:
    """Pool job: ``answers[0]`` is the gold (None: the question has none), the rest the traces' answers.
    The vote is ``LabelQuestion``'s; gold rewards are ``ScoreAgainstGold`` over the answers the vote kept
    (a trace whose answer timed out has none: 0.0, as ``eval`` scores it)."""

    def run(self, answers: list[str | None], verifier: Verifier) -> GoldResult:
        gold, traces = answers[0], answers[1:]
        result = label_question(traces, verifier)
        status = gold_status(gold, verifier)
        rewards = ScoreAgainstGold().run([gold, *result.answers], verifier) if status == GOLD_OK else None
        return _with_gold(result, status, rewards)

    def fallback(self, answers: list[str | None]) -> GoldResult:
        """After the watchdog killed a worker: string identity for the vote and against the gold."""
        result = LabelQuestion().fallback(answers[1:])
        if answers[0] is None:
            return _with_gold(result, GOLD_MISSING, None)
        return _with_gold(result, GOLD_OK, ScoreAgainstGold().fallback(answers))
