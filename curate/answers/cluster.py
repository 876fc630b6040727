"""Majority vote over one question's answers: pure, given an equivalence test.

Two answers are in one class when their identity keys (``extract.answer_key``) are identical or the
equivalence test holds (math-verify, either direction). Classes are the connected components of that
relation, so the result does not depend on the order answers are compared in: that is what lets the fast
path make each distinct comparison once instead of one per pair of trajectories (120 for 16), and still give
exactly the labels of the all-pairs path (timeouts included: see ``components``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .extract import answer_key

OK, TIE, NO_ANSWER = "ok", "tie", "no_answer"
Equivalent = Callable[[str, str], bool]


@dataclass(frozen=True)
class GroupLabel:
    """Labels of one question group, in the order its answers were given."""

    status: str
    clusters: list[int | None]  # per trajectory: 0 = majority class, None = no answer
    rewards: list[float | None]  # 1.0 in the majority class, 0.0 otherwise; None unless status is ok
    n_clusters: int
    majority_answer: str | None  # the most written form in the majority class (None on tie/no answer)
    majority_votes: int


class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def distinct_answers(answers: Sequence[str | None]) -> tuple[list[str], list[int | None]]:
    """Distinct answers (first written form per identity key) and each trajectory's index into them."""
    index_of: dict[str, int] = {}
    forms: list[str] = []
    which: list[int | None] = []
    for answer in answers:
        if answer is None:
            which.append(None)
            continue
        key = answer_key(answer)
        if key not in index_of:
            index_of[key] = len(forms)
            forms.append(answer)
        which.append(index_of[key])
    return forms, which


def naive_calls(which: Sequence[int | None]) -> list[tuple[int, int]]:
    """The comparisons between distinct answers (form indices, as ``(earlier, later)`` trajectory) that
    the all-pairs scan makes, each once, in the order it first makes them. Both orders of a pair can
    occur (``a`` before ``b`` somewhere, ``b`` before ``a`` elsewhere), and verify is not symmetric."""
    answered = [f for f in which if f is not None]
    seen: set[tuple[int, int]] = set()
    calls = []
    for x, earlier in enumerate(answered):
        for later in answered[x + 1 :]:
            if earlier != later and (earlier, later) not in seen:
                seen.add((earlier, later))
                calls.append((earlier, later))
    return calls


def components(forms: Sequence[str], which: Sequence[int | None], equivalent: Equivalent) -> list[int]:
    """Component root per distinct answer, making exactly the comparisons of the all-pairs scan, each
    once and in its order (repeats of a comparison give the same result).

    Pairs already joined are *not* skipped, though skipping could not change the components: a
    comparison can time out, the all-pairs scan would then drop an answer, and the drops must be the
    same too."""
    uf = _UnionFind(len(forms))
    for i, j in naive_calls(which):
        if equivalent(forms[i], forms[j]):
            uf.union(i, j)
    return [uf.find(i) for i in range(len(forms))]


def _all_trajectory_pairs(
    answers: Sequence[str | None], which: Sequence[int | None], n_forms: int, equivalent: Equivalent
) -> list[int]:
    """The naive reference: compare every pair of answered trajectories (120 for 16 traces), identical
    strings included, then read each distinct answer's component off its first trajectory."""
    answered = [i for i, a in enumerate(answers) if a is not None]
    uf = _UnionFind(len(answered))
    for x in range(len(answered)):
        for y in range(x + 1, len(answered)):
            a, b = answers[answered[x]], answers[answered[y]]
            if answer_key(a) == answer_key(b) or equivalent(a, b):
                uf.union(x, y)
    roots = [0] * n_forms
    for x in reversed(range(len(answered))):
        roots[which[answered[x]]] = uf.find(x)
    return roots


def label_group(answers: Sequence[str | None], equivalent: Equivalent, all_pairs: bool = False) -> GroupLabel:
    """Cluster one question's answers and score every trajectory against the plurality class."""
    forms, which = distinct_answers(answers)
    if all_pairs:
        roots = _all_trajectory_pairs(answers, which, len(forms), equivalent)
    else:
        roots = components(forms, which, equivalent)
    votes: dict[int, int] = {}
    first_seen: dict[int, int] = {}
    for position, form_index in enumerate(which):
        if form_index is None:
            continue
        root = roots[form_index]
        votes[root] = votes.get(root, 0) + 1
        first_seen.setdefault(root, position)
    # Largest class first; equal sizes keep the order of first appearance (deterministic cluster ids).
    order = sorted(votes, key=lambda root: (-votes[root], first_seen[root]))
    cluster_id = {root: rank for rank, root in enumerate(order)}
    clusters = [None if f is None else cluster_id[roots[f]] for f in which]

    if not order:
        status = NO_ANSWER
    elif len(order) > 1 and votes[order[0]] == votes[order[1]]:
        status = TIE
    else:
        status = OK
    if status == OK:
        rewards: list[float | None] = [1.0 if c == 0 else 0.0 for c in clusters]
        majority_answer = most_written(answers, clusters)
    else:
        rewards = [None] * len(answers)
        majority_answer = None
    return GroupLabel(
        status=status,
        clusters=clusters,
        rewards=rewards,
        n_clusters=len(order),
        majority_answer=majority_answer,
        majority_votes=votes[order[0]] if order else 0,
    )


def most_written(answers: Sequence[str | None], clusters: Sequence[int | None]) -> str:
    """The written form used most often in class 0 (first appearance breaks ties)."""
    counts: dict[str, int] = {}
    for answer, cluster in zip(answers, clusters):
        if cluster == 0 and answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
    return max(counts, key=lambda a: counts[a])  # dicts keep insertion order: max keeps the first
