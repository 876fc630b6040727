"""The naive labeling path: the reference `offcurate vote` must agree with, label for label.

What the obvious implementation does: read every shard whole, extract each answer from the full text of
its trace, parse every answer with math-verify (no cache), verify all pairs of a question's answers in both
directions, one process. Same rules (``extract_answer``, components of the equivalence relation, an
answer dropped when reading it (parse and evaluation) or a comparison of it in its question times out),
none of the shortcuts: it remembers nothing from one question to the next, so it pays a timeout in every
question that holds a slow answer.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from offcurate.curate.answers.equivalence import Verifier, label_question
from offcurate.curate.answers.extract import extract_answer
from offcurate.curate.io.shards import list_shards
from offcurate.curate.vote import TRACE_LABEL_SCHEMA


def naive_labels(folder: Path, timeout: float, out: Path | None = None) -> tuple[pl.DataFrame, int]:
    """Per-trace labels (question_id, sample_idx, answer, cluster, reward) plus per-question status, and
    how many math-verify steps timed out."""
    frames = [pl.from_arrow(pq.read_table(path)) for path in list_shards(folder)]
    traces = pl.concat(frames).sort("question_id", "sample_idx")
    answers = [extract_answer(text)[0] for text in traces["response"].to_list()]
    traces = traces.with_columns(pl.Series("answer", answers, dtype=pl.String))
    verifier = Verifier(timeout=timeout, cached=False)
    rows = {"question_id": [], "sample_idx": [], "answer": [], "cluster": [], "reward": [], "status": []}
    for (qid,), group in traces.group_by("question_id", maintain_order=True):
        result = label_question(group["answer"].to_list(), verifier, all_pairs=True)
        n = group.height
        rows["question_id"] += [qid] * n
        rows["sample_idx"] += group["sample_idx"].to_list()
        rows["answer"] += result.answers
        rows["cluster"] += result.label.clusters
        rows["reward"] += result.label.rewards
        rows["status"] += [result.label.status] * n
    labels = pl.from_arrow(
        pa.Table.from_pydict(rows, TRACE_LABEL_SCHEMA.append(pa.field("status", pa.string())))
    )
    if out is not None:  # write the labeled traces too, as `vote` does, so both sides pay the I/O
        out.mkdir(parents=True, exist_ok=True)
        traces.drop("answer").join(labels, on=["question_id", "sample_idx"]).write_parquet(
            out / "labeled.parquet", compression="zstd"
        )
    return labels, verifier.timeouts


def fast_labels(voted: Path) -> pl.DataFrame:
    """The same columns read back from `offcurate vote` output: one folder, or a folder of slices."""
    traces = pl.read_parquet(sorted(voted.rglob("trajectories/*.parquet")))
    questions = pl.read_parquet(sorted(voted.rglob("questions/*.parquet"))).select("question_id", "status")
    return traces.select("question_id", "sample_idx", "answer", "cluster", "reward").join(
        questions, on="question_id"
    )


def compare(naive: pl.DataFrame, fast: pl.DataFrame) -> list[str]:
    """Rows where the two label sets differ (empty when identical)."""
    key = ["question_id", "sample_idx"]
    a, b = naive.sort(key), fast.sort(key).select(naive.columns)
    if a.height != b.height:
        return [f"row counts differ: naive {a.height}, fast {b.height}"]
    diff = a.with_row_index().join(b, on=key, suffix="_fast")
    problems = []
    for column in ("answer", "cluster", "reward", "status"):
        bad = diff.filter(pl.col(column).ne_missing(pl.col(f"{column}_fast")))
        problems += [f"{column}: {r}" for r in bad.select(*key, column, f"{column}_fast").head(5).iter_rows()]
    return problems
