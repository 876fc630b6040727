"""Local stand-ins of the teacher-trace sets with gold answers, in each dataset card's layout.

    write_layout(folder, openr1_table([problem("What is 1+1?", "2", ["2", "3"])]))

Every table has the card's columns and types (also the ones offcurate does not read), so a test runs the
real adapters on what the Hub serves: OpenR1-Math-220k (card 075afe03), nvidia/OpenMathReasoning (config
``default``), DeepMath-103K (card 0406dc9d). ``answer_trace`` writes an R1-style trace boxing an answer
(None: a trace cut inside its thinking, no answer).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offcurate.data.make_gold_sample import SCHEMA as OPENR1_SCHEMA  # the Hub layout, written once

OPENMATH_SCHEMA = pa.schema(
    [
        ("expected_answer", pa.string()),
        ("problem_type", pa.string()),
        ("problem_source", pa.string()),
        ("generation_model", pa.string()),
        ("pass_rate_72b_tir", pa.string()),
        ("problem", pa.string()),
        ("generated_solution", pa.string()),
        ("inference_mode", pa.string()),
        ("used_in_kaggle", pa.bool_()),
    ]
)
DEEPMATH_SCHEMA = pa.schema(
    [
        ("question", pa.string()),
        ("final_answer", pa.string()),
        ("difficulty", pa.float64()),
        ("topic", pa.string()),
        ("r1_solution_1", pa.string()),
        ("r1_solution_2", pa.string()),
        ("r1_solution_3", pa.string()),
    ]
)


def answer_trace(answer: str | None, note: str = "") -> str:
    """An R1-style trace whose final part boxes ``answer``; None: cut inside the thinking (no answer)."""
    if answer is None:
        return f"<think>\nLet me try. {note} Maybe \\boxed{{9}}, let me keep checking"
    return f"<think>\nLet me work it out. {note}\n</think>\n\nSo the answer is $\\boxed{{{answer}}}$."


@dataclass
class Problem:
    """One problem: its text, gold, and the answers of its traces (None: a trace without an answer)."""

    text: str
    gold: str | None
    answers: list[str | None]
    verdicts: list[bool | None] | None = None
    source: str = "olympiads"
    extra: dict = field(default_factory=dict)

    def traces(self) -> list[str | None]:
        return [answer_trace(a, f"({self.text[:20]} #{i})") for i, a in enumerate(self.answers)]


def openr1_table(problems: list[Problem]) -> pa.Table:
    rows = []
    for p in problems:
        traces = p.extra.get("generations", p.traces())
        verdicts = p.verdicts if p.verdicts is not None else [None] * len(traces)
        rows.append(
            {
                "problem": p.text,
                "solution": "A worked solution.",
                "answer": p.gold,
                "problem_type": "Algebra",
                "question_type": "math-word-problem",
                "source": p.source,
                "uuid": f"uuid-{len(rows)}",
                "is_reasoning_complete": [t is not None and "</think>" in t for t in traces],
                "generations": traces,
                "correctness_math_verify": verdicts,
                "correctness_llama": None,
                "finish_reasons": ["stop" for _ in traces],
                "correctness_count": sum(bool(v) for v in verdicts),
                "messages": [{"content": p.text, "role": "user"}],
            }
        )
    return pa.Table.from_pylist(rows, OPENR1_SCHEMA)


def openmath_table(rows: list[dict]) -> pa.Table:
    """``rows``: problem, generated_solution, expected_answer, problem_type (+ inference_mode, ...)."""
    full = [
        {
            "problem_source": "aops_c4_high_school_math",
            "generation_model": "DeepSeek-R1",
            "pass_rate_72b_tir": "0.5",
            "inference_mode": "cot",
            "used_in_kaggle": False,
            **row,
        }
        for row in rows
    ]
    return pa.Table.from_pylist(full, OPENMATH_SCHEMA)


def deepmath_table(rows: list[dict]) -> pa.Table:
    """``rows``: question, final_answer, difficulty, topic, r1_solution_1..3."""
    return pa.Table.from_pylist(rows, DEEPMATH_SCHEMA)


def write_layout(folder: Path, *tables: pa.Table) -> Path:
    """Each table as one raw shard of ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, table in enumerate(tables):
        pq.write_table(table, folder / f"train-{i:05d}-of-{len(tables):05d}.parquet")
    return folder
