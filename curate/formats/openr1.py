"""``--format openr1-math``: open-r1/OpenR1-Math-220k, one row per problem with a list of R1 traces.

    traces = adapt(batch)     # one row per element of ``generations``, with the problem's ``answer`` as gold

Columns (dataset card at 075afe03dbbc6e7b8bd35af1e4259957f0beb07d, configs ``default``/``extended``/``all``):
``problem``, ``answer`` (the gold), ``generations`` (list of DeepSeek-R1 traces, 2-4),
``correctness_math_verify`` (list of bool, one per generation: the set's own verdict), ``source``, plus
``solution``, ``uuid``, ``finish_reasons``, ``correctness_llama``, ... which are not needed. A verdict
list of another length than its generations is not lined up (its verdicts become null); a null or blank
generation is dropped and counted.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from ..filter_shard import blank
from ..io.shards import is_string
from .canonical import (
    Format,
    Traces,
    aligned_elements,
    assemble,
    empty_lists,
    explode,
    extra_fields,
    gold_column,
    is_bool_list,
    is_gold_type,
    is_string_list,
)

VERDICTS = "correctness_math_verify"


def adapt(batch: pa.RecordBatch) -> Traces:
    parents, position, responses = explode(batch, "generations")
    rows = pa.array(parents, pa.int64())
    question = pc.take(batch.column("problem"), rows)
    if VERDICTS in batch.schema.names:
        verdict = aligned_elements(batch, VERDICTS, "generations", parents, position).cast(pa.bool_())
    else:
        verdict = pa.nulls(len(rows), pa.bool_())
    columns = {
        "question": question,
        "response": responses,
        "source": pc.take(batch.column("source"), rows),
        "difficulty": pa.nulls(len(rows), pa.int64()),
        "gold": pc.take(gold_column(batch.column("answer")), rows),
        "dataset_verdict": verdict,
    }
    reasons = {"empty_question": blank(question), "empty_response": blank(responses)}
    without = empty_lists(batch.column("generations"), "problem without generations")
    return assemble(columns, extra_fields(gold=True, verdicts=True), reasons, without)


OPENR1 = Format(
    name="openr1-math",
    dataset="open-r1/OpenR1-Math-220k",
    columns={
        "problem": ("string", is_string),
        "answer": ("string", is_gold_type),
        "generations": ("list<string>", is_string_list),
        "source": ("string", is_string),
    },
    adapt=adapt,
    gold=True,
    verdicts=True,
    optional={VERDICTS: ("list<bool>", is_bool_list)},
)
