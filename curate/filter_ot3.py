"""The OpenThoughts3 layout for ``filter``: one raw record batch -> one trajectory per usable row.

    raw = OpenThoughts3(domains=frozenset({"math"}))
    columns = raw.check(path, schema)   # the columns to read, or a one-line error naming file and column
    kept, reasons = raw.read(batch)     # kept: question, response, source, difficulty (usable rows, in order)
                                        # reasons: one per input row, null where the row was kept

The only part of ``filter`` that knows OpenThoughts3's columns (``difficulty``, ``source``, ``domain``,
``conversations`` list<struct<from, value>>); the rest (ids, ranks, writing, workers) takes any layout
that gives the same four columns (``filter_shard.Reader``; the other sets: ``curate/formats``). A row is
usable when its domain is wanted, its conversation has a question turn (``human``/``user``), a teacher
turn after it (``gpt``/``assistant``) and neither is blank; otherwise its reason is the first of
``domain=<domain>``, ``no_conversation``, ``no_question_turn``, ``no_teacher_turn``, ``empty_question``,
``empty_response`` that applies (datatrove's habit: every drop is counted by its reason). "Blank" is
Python's ``str.strip`` (``filter_shard.blank``); the roles are found with Arrow and numpy
over the batch's turns, so the ~50 KB responses are never turned into Python strings here.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .filter_shard import CANONICAL, blank, bools
from .io.shards import check_columns, is_integer, is_string

QUESTION_ROLES = ("human", "user")
TEACHER_ROLES = ("gpt", "assistant")


def _is_conversations(t: pa.DataType) -> bool:
    if not (pa.types.is_list(t) or pa.types.is_large_list(t)) or not pa.types.is_struct(t.value_type):
        return False
    names = {f.name: f.type for f in t.value_type}
    return all(k in names and is_string(names[k]) for k in ("from", "value"))


INPUT_COLUMNS = {
    "difficulty": ("int64 (nullable)", is_integer),
    "source": ("string", is_string),
    "domain": ("string", is_string),
    "conversations": ("list<struct<from: string, value: string>>", _is_conversations),
}


def _first_per_row(rows: np.ndarray, positions: np.ndarray, count: int) -> np.ndarray:
    """For turns given as (row, position) sorted by position, the first position of each row; -1 if none."""
    first = np.full(count, -1, dtype=np.int64)
    if rows.size:
        starts = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
        first[rows[starts]] = positions[starts]
    return first


def split_conversation(conversations: list[dict] | None) -> tuple[str, str] | str:
    """``(question, response)`` of one row's turns, or the reason the row cannot be used: the rule
    ``OpenThoughts3.read`` applies to a whole batch, for one row (tests hold the two together)."""
    if not conversations:
        return "no_conversation"
    question = next((t for t in conversations if t and t.get("from") in QUESTION_ROLES), None)
    if question is None:
        return "no_question_turn"
    after = conversations[conversations.index(question) + 1 :]
    teacher = next((t for t in after if t and t.get("from") in TEACHER_ROLES), None)
    if teacher is None:
        return "no_teacher_turn"
    if not (question.get("value") or "").strip():
        return "empty_question"
    if not (teacher.get("value") or "").strip():
        return "empty_response"
    return question["value"], teacher["value"]


def keep_row(domain: str | None, conversations: list[dict] | None, domains: set[str]) -> tuple[bool, str]:
    """``(keep, reason)`` of one row: the datatrove habit, so every drop is counted by its reason."""
    if domain not in domains:
        return False, f"domain={domain}"
    split = split_conversation(conversations)
    if isinstance(split, str):
        return False, split
    return True, "kept"


@dataclass(frozen=True)
class OpenThoughts3:
    """OpenThoughts3-1.2M's rows (16 QwQ-32B traces a question); ``domains``: the ones kept."""

    domains: frozenset[str] = frozenset({"math"})
    name = "openthoughts3"
    columns = INPUT_COLUMNS
    extra = ()

    def check(self, path: Path, schema: pa.Schema) -> list[str]:
        check_columns(path, schema, INPUT_COLUMNS)
        return list(INPUT_COLUMNS)

    def notes(self, batch: pa.RecordBatch) -> Counter:
        return Counter()

    def card(self) -> tuple[str, str]:
        """The output's dataset card: title and text."""
        return "Math trajectories (offcurate filter)", (
            "One row per teacher trajectory. `question_id` = first 16 hex of sha256 of the whitespace-"
            "collapsed question; `sample_idx` ranks a question's samples by response content; "
            "`finished` is false for a trace cut inside `<think>`."
        )

    def nothing_kept(self) -> str:
        return f"no row of domain {'/'.join(sorted(self.domains))} could be used"

    def read(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Array]:
        """``(usable rows as CANONICAL, reason per input row)``: see the module doc."""
        n = batch.num_rows
        domain = batch.column("domain")
        conversations = batch.column("conversations")
        wanted = pc.is_in(domain, value_set=pa.array(sorted(self.domains), domain.type))
        reason = np.where(bools(wanted), 0, 1).astype(np.int8)

        offsets = conversations.offsets.to_numpy()
        turns = conversations.values.slice(offsets[0], offsets[-1] - offsets[0])
        lengths = np.diff(offsets)
        usable = bools(conversations.is_valid()) & (lengths > 0)
        reason[(reason == 0) & ~usable] = 2
        rows = np.repeat(np.arange(n), lengths)
        positions = np.arange(len(turns), dtype=np.int64)
        speaker = turns.field("from")
        present = turns.is_valid()
        asks = pc.and_(present, pc.is_in(speaker, value_set=pa.array(QUESTION_ROLES, speaker.type)))
        answers = pc.and_(present, pc.is_in(speaker, value_set=pa.array(TEACHER_ROLES, speaker.type)))
        asks, answers = bools(asks), bools(answers)
        question = _first_per_row(rows[asks], positions[asks], n)
        after = answers & (positions > question[rows]) & (question[rows] >= 0)
        teacher = _first_per_row(rows[after], positions[after], n)
        reason[(reason == 0) & (question < 0)] = 3
        reason[(reason == 0) & (teacher < 0)] = 4

        text = turns.field("value")
        candidates = np.flatnonzero(reason == 0)
        questions = text.take(question[candidates])
        empty = blank(questions)
        reason[candidates[empty]] = 5
        candidates, questions = candidates[~empty], questions.filter(pa.array(~empty))
        responses = text.take(teacher[candidates])  # the one copy of the text made here
        empty = blank(responses)
        reason[candidates[empty]] = 6
        if empty.any():
            candidates, questions = candidates[~empty], questions.filter(pa.array(~empty))
            responses = responses.filter(pa.array(~empty))
        columns = [questions, responses, batch.column("source").take(candidates)]
        columns.append(batch.column("difficulty").take(candidates))
        canonical = pa.RecordBatch.from_arrays(
            [c if c.type == f.type else c.cast(f.type) for c, f in zip(columns, CANONICAL)], schema=CANONICAL
        )
        return canonical, self._reasons(reason, domain)

    @staticmethod
    def _reasons(code: np.ndarray, domain: pa.Array) -> pa.Array:
        names = [None, None, "no_conversation", "no_question_turn", "no_teacher_turn", "empty_question"]
        names.append("empty_response")
        off_domain = np.flatnonzero(code == 1)
        domains = dict(zip(off_domain.tolist(), domain.take(off_domain).to_pylist()))
        out = [names[c] if c != 1 else f"domain={domains[i]}" for i, c in enumerate(code.tolist())]
        return pa.array(out, pa.string())
