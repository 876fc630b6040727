"""``--format openmathreasoning``: nvidia/OpenMathReasoning, one row per generated solution.

    traces = adapt(batch)     # one trajectory per row; gold = expected_answer where it was extracted

Columns (dataset card, config ``default``, splits ``cot``/``tir``/``genselect``/``additional_problems``):
``problem``, ``generated_solution``, ``expected_answer``, ``problem_type``, ``problem_source``,
``inference_mode``, ``generation_model``, ``pass_rate_72b_tir``, ... The card says ``expected_answer`` is
the answer extracted from the forum only where ``problem_type`` is ``has_answer_extracted``; for the other
problems (``no_answer_extracted``, ``converted_proof``) it is the majority vote of the generated solutions.
A vote is not a gold (pseudo-label accuracy against it would measure a vote against a vote), so those rows
keep their traces and get no gold (counted). ``genselect`` rows judge a list of candidate solutions
instead of solving the problem: dropped and counted, as rows without a solution (``additional_problems``).
"""

from __future__ import annotations

from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from ..filter_shard import blank
from ..io.shards import is_string
from .canonical import Format, Traces, assemble, extra_fields, gold_column, is_gold_type

EXTRACTED = "has_answer_extracted"


def _extracted(batch: pa.RecordBatch) -> pa.Array:
    return pc.fill_null(pc.equal(batch.column("problem_type"), EXTRACTED), False)


def adapt(batch: pa.RecordBatch) -> Traces:
    names, rows = batch.schema.names, batch.num_rows
    question, response = batch.column("problem"), batch.column("generated_solution")
    none = pa.nulls(rows, pa.string())
    gold = pc.if_else(_extracted(batch), gold_column(batch.column("expected_answer")), none)
    source = batch.column("problem_source") if "problem_source" in names else pa.nulls(rows, pa.string())
    mode = batch.column("inference_mode") if "inference_mode" in names else pa.nulls(rows, pa.string())
    columns = {
        "question": question,
        "response": response,
        "source": source,
        "difficulty": pa.nulls(rows, pa.int64()),
        "gold": gold,
    }
    reasons = {
        "inference_mode=genselect": pc.equal(mode, "genselect"),
        "empty_question": blank(question),
        "empty_response": blank(response),
    }
    return assemble(columns, extra_fields(gold=True), reasons)


def withheld_golds(batch: pa.RecordBatch) -> Counter:
    """Rows whose ``expected_answer`` is a vote, not a gold, by ``problem_type`` (their traces are kept)."""
    withheld = pc.and_(pc.invert(_extracted(batch)), pc.is_valid(batch.column("expected_answer")))
    kinds = pc.filter(batch.column("problem_type"), withheld)
    notes: Counter = Counter()
    for kind, n in zip(*(pc.value_counts(kinds).flatten())) if len(kinds) else ():
        notes[f"gold withheld (problem_type={kind.as_py()}: expected_answer is a vote)"] += n.as_py()
    return notes


OPENMATH = Format(
    name="openmathreasoning",
    dataset="nvidia/OpenMathReasoning",
    columns={
        "problem": ("string", is_string),
        "generated_solution": ("string", is_string),
        "expected_answer": ("string", is_gold_type),
        "problem_type": ("string", is_string),
    },
    adapt=adapt,
    gold=True,
    optional={"problem_source": ("string", is_string), "inference_mode": ("string", is_string)},
    count_notes=withheld_golds,
)
