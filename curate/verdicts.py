"""Agreement of offcurate's per-trace scores with a dataset's own verdicts (``correctness_math_verify``).

    agreement, disagreements = read_verdicts(Path("data/voted"))      # None when the set has no verdicts

OpenR1-Math-220k ships, per trace, whether its own math-verify run judged the trace right. ``stats`` sets
offcurate's ``gold_reward`` (and the vote ``reward``) against it, and lists every trace where the gold
reward and the dataset disagree, with the end of the trace, so a person can see who is right: a
disagreement is an extraction difference (which answer in the trace counts), never a different gold.
Only the small columns are read; a row group's text is read only when it holds a disagreement.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa

from .io.errors import InputError
from .io.shards import list_shards, open_shard

TAIL_CHARS = 400  # end of the trace shown for a disagreement: where its final answer sits
_SMALL = ["question_id", "sample_idx", "source", "gold", "answer", "reward", "gold_reward", "dataset_verdict"]


def _compare(frame: pl.DataFrame, ours: str) -> dict:
    scored = frame.filter(pl.col(ours).is_not_null() & pl.col("dataset_verdict").is_not_null())
    right, theirs = pl.col(ours) == 1.0, pl.col("dataset_verdict")
    row = scored.select(
        pl.len().alias("traces"),
        (right == theirs).sum().alias("agree"),
        (right & ~theirs).sum().alias("ours_right_dataset_wrong"),
        (~right & theirs).sum().alias("ours_wrong_dataset_right"),
    ).row(0, named=True)
    return {"offcurate": ours, **row, "agreement": row["agree"] / row["traces"] if row["traces"] else None}


def read_verdicts(voted: Path) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """(agreement per offcurate score, the traces whose gold reward the dataset contradicts), or None."""
    shards = [p for p in list_shards(voted) if p.parent.name == "trajectories"]
    if not shards:
        raise InputError(f"{voted}: no trajectories/*.parquet inside (is this an `offcurate vote` output?)")
    if any("dataset_verdict" not in open_shard(p).schema_arrow.names for p in shards):
        return None
    frames, disagreeing = [], []
    for path in shards:
        shard = open_shard(path)
        for group in range(shard.num_row_groups):
            small = pl.from_arrow(shard.read_row_group(group, columns=_SMALL))
            frames.append(small)
            wrong = small.with_row_index("row").filter(
                pl.col("gold_reward").is_not_null()
                & pl.col("dataset_verdict").is_not_null()
                & ((pl.col("gold_reward") == 1.0) != pl.col("dataset_verdict"))
            )
            if wrong.height:
                text = shard.read_row_group(group, columns=["response"]).column("response")
                tails = text.take(pa.array(wrong["row"].to_list())).to_pylist()
                disagreeing.append(
                    wrong.drop("row").with_columns(
                        pl.Series("response_tail", [t[-TAIL_CHARS:] for t in tails], dtype=pl.String)
                    )
                )
    traces = pl.concat(frames)
    agreement = pl.DataFrame([_compare(traces, "gold_reward"), _compare(traces, "reward")])
    schema = {**traces.schema, "response_tail": pl.String}
    table = pl.concat(disagreeing) if disagreeing else pl.DataFrame(schema=schema)
    return agreement, table.sort("question_id", "sample_idx")
