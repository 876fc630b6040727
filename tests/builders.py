"""Builders for hand-written OpenThoughts3-shaped rows and folders used across the tests."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

OT3_SCHEMA = pa.schema(
    [
        ("difficulty", pa.int64()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ]
)


def trace(answer: str | None, thinking: str = "Let me think.", closed: bool = True) -> str:
    """A QwQ-style trace whose final part boxes ``answer`` (no box when ``answer`` is None)."""
    final = f"\n\nSo the answer is $\\boxed{{{answer}}}$." if answer is not None else "\n\nI am not sure."
    return f"<think>\n{thinking}\n</think>{final}" if closed else f"<think>\n{thinking}"


def ot3_row(question: str, response: str | None, domain: str = "math", source: str = "test", difficulty=3):
    turns = [{"from": "human", "value": question}]
    if response is not None:
        turns.append({"from": "gpt", "value": response})
    return {"difficulty": difficulty, "source": source, "domain": domain, "conversations": turns}


def write_ot3(folder: Path, shards: list[list[dict]]) -> Path:
    """Write each list of rows as one raw OpenThoughts3 shard."""
    folder.mkdir(parents=True, exist_ok=True)
    for i, rows in enumerate(shards):
        pq.write_table(
            pa.Table.from_pylist(rows, OT3_SCHEMA), folder / f"train-{i:05d}-of-{len(shards):05d}.parquet"
        )
    return folder


def group_rows(question: str, answers: list[str | None], **kwargs) -> list[dict]:
    """One question's trajectories, one per answer (None -> a truncated trace without an answer)."""
    return [
        ot3_row(
            question,
            trace(a) if a is not None else trace(None, "cut mid-way \\boxed{9}", closed=False),
            **kwargs,
        )
        for a in answers
    ]


def write_voted_groups(root: Path, groups: dict[str, list[str | None]], shards: int = 2) -> Path:
    """raw -> filter -> vote for hand-written groups (question -> answers), rows spread over ``shards``."""
    from offcurate.curate.filter import run_filter
    from offcurate.curate.vote import run_vote

    rows = [r for question, answers in groups.items() for r in group_rows(question, answers)]
    write_ot3(root / "raw", [rows[i::shards] for i in range(shards)])
    run_filter(root / "raw", root / "math")
    run_vote(root / "math", root / "voted", workers=1)
    return root / "voted"
