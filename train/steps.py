"""From the voted index to optimizer steps: Q whole questions per step, tokenised and weighted.

    stream = StepStream(index, reader, encoder, objective, questions_per_step=8, max_len=32768)
    step = stream.next_step()        # None when the data is exhausted

All G traces of a question land in the same step, so the group mean, the all-positive test and the 1/G
factor are exact however the step is later split into micro-batches. Traces longer than ``--max-len`` are
dropped and counted (their question keeps its G and its advantages); a question that loses every trace it
needed is replaced by the next one. ``state()`` / the constructor's ``epoch``/``position`` make the stream
resumable: the order of an epoch is a pure function of (seed, epoch).

``dropped`` (the run's totals) counts each trajectory or question once: every epoch visits the same ones,
so only the first epoch's visits are counted. A step's own ``StepBatch.dropped`` counts what was skipped
while filling that step, in any epoch (the per-step ``dropped_long`` metric).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .data import ChatEncoder, Group, RowReader, VotedIndex, question_order
from .objective import GroupPlan, ObjectiveConfig, plan_group, token_weight
from .packing import Sample


@dataclass
class StepBatch:
    """The samples of one optimizer step and what the metrics need about its questions."""

    samples: list[Sample]
    n_questions: int
    n_all_positive: int
    advantages: list[float]
    epoch: int
    dropped: Counter = field(default_factory=Counter)


@dataclass
class _Taken:
    group: Group
    plan: GroupPlan
    samples: list[tuple[list[int], list[int], float]]


class StepStream:
    """Yields ``StepBatch`` objects in a deterministic, resumable order (epochs of the ok questions)."""

    def __init__(
        self,
        index: VotedIndex,
        reader: RowReader,
        encoder: ChatEncoder,
        objective: ObjectiveConfig,
        questions_per_step: int,
        max_len: int,
        seed: int = 0,
        shuffle: bool = True,
        epochs: int | None = 1,
        epoch: int = 0,
        position: int = 0,
    ):
        self.index, self.reader, self.encoder, self.objective = index, reader, encoder, objective
        self.q, self.max_len, self.seed, self.shuffle, self.epochs = (
            questions_per_step,
            max_len,
            seed,
            shuffle,
            epochs,
        )
        self.epoch, self.position = epoch, position
        self.order = question_order(len(index.groups), seed, epoch, shuffle)
        self.dropped: Counter = Counter()
        # a checkpoint follows a step, and a step holds questions of the current epoch
        self._epoch_trained = position > 0

    def state(self) -> dict[str, Any]:
        """Where the stream stands (stored in checkpoints) and the drop counters so far."""
        return {"epoch": self.epoch, "position": self.position, "dropped": dict(self.dropped)}

    def _advance_epoch(self) -> bool:
        if self.epochs is not None and self.epoch + 1 >= self.epochs:
            return False
        if not self._epoch_trained:  # a whole epoch without one usable question: the next is the same
            return False
        self._epoch_trained = False
        self.epoch += 1
        self.position = 0
        self.order = question_order(len(self.index.groups), self.seed, self.epoch, self.shuffle)
        return True

    def _drop(self, step_dropped: Counter, reason: str) -> None:
        """Count a skipped trace or question for the step, and for the run's totals in the first epoch."""
        step_dropped[reason] += 1
        if self.epoch == 0:
            self.dropped[reason] += 1

    def _candidates(self, n: int, dropped: Counter) -> list[tuple[Group, GroupPlan]]:
        out = []
        while len(out) < n and self.position < len(self.order):
            group = self.index.groups[self.order[self.position]]
            self.position += 1
            plan = plan_group(group.rewards, self.objective)
            if plan.size == 0:
                self._drop(dropped, "question without a positive trace (sft)")
                continue
            out.append((group, plan))
        return out

    def _encode(self, candidates: list[tuple[Group, GroupPlan]], dropped: Counter) -> list[_Taken]:
        wanted = [(k, i) for k, (g, p) in enumerate(candidates) for i in range(len(g.refs)) if p.used[i]]
        refs = [candidates[k][0].refs[i] for k, i in wanted]
        encoded = self.encoder.encode(self.reader.fetch(refs)) if refs else []
        taken = [_Taken(g, p, []) for g, p in candidates]
        for (k, i), (prompt, response) in zip(wanted, encoded):
            if len(prompt) + len(response) > self.max_len:
                self._drop(dropped, "trajectory longer than max-len")
                continue
            if not response:
                self._drop(dropped, "empty response")
                continue
            taken[k].samples.append((prompt, response, taken[k].plan.advantages[i]))
        kept = []
        for t in taken:
            if any(t.plan.used) and not t.samples:
                self._drop(dropped, "question with every trace dropped")
            else:
                kept.append(t)
        return kept

    def next_step(self) -> StepBatch | None:
        """The next Q questions (fewer at the end of an epoch), or None when every epoch is done."""
        taken: list[_Taken] = []
        dropped: Counter = Counter()
        epoch = self.epoch
        while len(taken) < self.q:
            if self.position >= len(self.order):
                if taken or not self._advance_epoch():
                    break
                epoch = self.epoch
                continue
            taken.extend(self._encode(self._candidates(self.q - len(taken), dropped), dropped))
        if not taken:
            return None
        self._epoch_trained = True
        n_q = len(taken)
        samples, advantages, n_all_positive = [], [], 0
        for k, t in enumerate(taken):
            n_all_positive += t.plan.all_positive
            advantages.extend(t.plan.advantages)
            for prompt, response, adv in t.samples:
                weight = token_weight(n_q, t.plan.size, len(response))
                samples.append(Sample(prompt + response, len(prompt), adv, weight, question=k))
        return StepBatch(samples, n_q, n_all_positive, advantages, epoch, dropped)
