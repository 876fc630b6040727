"""``--format columns``: any other set, given which column holds what.

    fmt = columns_format(question="prompt", response="completions", gold="reference", difficulty="level")
    traces = fmt.adapt(batch)

``response`` may be a string column (one trace per row) or a list of strings (one trace per element, as
OpenR1-Math-220k's ``generations``). ``gold``, ``difficulty`` (integer, or a number that is floored) and
``source`` are optional; without ``gold`` the trajectories carry none and the output is the
OpenThoughts3 layout.
"""

from __future__ import annotations

from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from ..filter_shard import blank
from ..io.errors import InputError
from ..io.shards import is_string
from .canonical import (
    Format,
    Traces,
    assemble,
    difficulty_column,
    empty_lists,
    explode,
    extra_fields,
    gold_column,
    is_gold_type,
    is_number,
    is_string_list,
)


def _adapt(
    batch: pa.RecordBatch,
    question: str,
    response: str,
    gold: str | None,
    difficulty: str | None,
    source: str | None,
) -> Traces:
    rows, without = batch.num_rows, None
    if is_string_list(batch.schema.field(response).type):
        parents, _, responses = explode(batch, response)
        index = pa.array(parents, pa.int64())
        without = empty_lists(batch.column(response), "row without traces (empty list)")
    else:
        index, responses = pa.array(range(rows), pa.int64()), batch.column(response)
    questions = pc.take(batch.column(question), index)
    columns = {
        "question": questions,
        "response": responses,
        "source": pc.take(batch.column(source), index) if source else pa.nulls(len(index), pa.string()),
        "difficulty": pc.take(
            difficulty_column(batch.column(difficulty) if difficulty else None, rows), index
        ),
    }
    if gold:
        columns["gold"] = pc.take(gold_column(batch.column(gold)), index)
    reasons = {"empty_question": blank(questions), "empty_response": blank(responses)}
    return assemble(columns, extra_fields(bool(gold)), reasons, without)


def columns_format(
    question: str | None,
    response: str | None,
    gold: str | None = None,
    difficulty: str | None = None,
    source: str | None = None,
) -> Format:
    """The ``columns`` format for this mapping; a one-line error when a required option is missing."""
    missing = [
        opt for opt, value in (("--question-col", question), ("--response-col", response)) if not value
    ]
    if missing:
        raise InputError(f"--format columns needs {' and '.join(missing)} (which column holds what)")
    assert question and response
    wanted = {
        question: ("string", is_string),
        response: ("string or list<string>", lambda t: is_string(t) or is_string_list(t)),
    }
    if gold:
        wanted[gold] = ("string or a number", is_gold_type)
    if difficulty:
        wanted[difficulty] = ("a number", is_number)
    if source:
        wanted[source] = ("string", is_string)
    adapt = partial(
        _adapt, question=question, response=response, gold=gold, difficulty=difficulty, source=source
    )
    return Format(name="columns", dataset="a column mapping", columns=wanted, adapt=adapt, gold=bool(gold))
