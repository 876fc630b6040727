"""``--format deepmath``: zwhe99/DeepMath-103K, one row per problem with three R1 solutions in columns.

    traces = adapt(batch)     # three trajectories per row (r1_solution_1..3, in that order)

Columns (dataset card at 0406dc9d807ab2bfe11423c84468a234c8be18c1): ``question``, ``final_answer`` (the
gold), ``difficulty`` (float64, half levels such as 6.5: floored to the 1-10 integer level), ``topic``
(kept as ``source``, the grouping of ``stats``), ``r1_solution_1``, ``r1_solution_2``, ``r1_solution_3``.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..filter_shard import blank
from ..io.shards import is_string
from .canonical import (
    Format,
    Traces,
    assemble,
    difficulty_column,
    extra_fields,
    gold_column,
    is_gold_type,
    is_number,
)

SOLUTIONS = ("r1_solution_1", "r1_solution_2", "r1_solution_3")


def adapt(batch: pa.RecordBatch) -> Traces:
    names, rows = batch.schema.names, batch.num_rows
    k = len(SOLUTIONS)
    order = pa.array(np.arange(rows * k).reshape(k, rows).T.ravel(), pa.int64())  # row by row, 1..3
    parents = pa.array(np.repeat(np.arange(rows), k), pa.int64())
    solutions = pa.concat_arrays([batch.column(c).cast(pa.string()) for c in SOLUTIONS])
    responses = pc.take(solutions, order)
    question = pc.take(batch.column("question"), parents)
    topic = batch.column("topic") if "topic" in names else pa.nulls(rows, pa.string())
    difficulty = difficulty_column(batch.column("difficulty") if "difficulty" in names else None, rows)
    columns = {
        "question": question,
        "response": responses,
        "source": pc.take(topic, parents),
        "difficulty": pc.take(difficulty, parents),
        "gold": pc.take(gold_column(batch.column("final_answer")), parents),
    }
    reasons = {"empty_question": blank(question), "empty_response": blank(responses)}
    return assemble(columns, extra_fields(gold=True), reasons)


DEEPMATH = Format(
    name="deepmath",
    dataset="zwhe99/DeepMath-103K",
    columns={
        "question": ("string", is_string),
        "final_answer": ("string", is_gold_type),
        **{c: ("string", is_string) for c in SOLUTIONS},
    },
    adapt=adapt,
    gold=True,
    optional={"difficulty": ("a number", is_number), "topic": ("string", is_string)},
)
