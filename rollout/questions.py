"""The distinct questions of a stage's output, for sampling a model on them (``offcurate rollout``).

    questions = load_questions(Path("data/voted"), select="all-positive")   # question_id, question

Reads a ``vote`` output (its ``questions/`` table, so status and all-positive are known; the K slices of a
``vote --num-shards K`` under one parent are read together), or any folder of
Parquet shards with a ``question`` column (``filter`` output, a ``sample`` mix): one row per question,
ordered by question id, so a ``--limit`` takes the same hash-random subset every time.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from ..curate.io.errors import InputError
from ..curate.io.ids import question_id
from ..curate.io.shards import check_columns, is_bool, is_string, list_shards, open_shard, read_table

SELECT = {
    "all": None,
    "ok": pl.col("status") == "ok",
    "all-positive": pl.col("all_positive"),
}
_SELECT_COLUMNS = {"status": ("string", is_string), "all_positive": ("bool", is_bool)}


def _shards(path: Path) -> list[Path]:
    """A vote output's questions/ table (or those of vote slices under one parent) when there is one,
    else every shard under ``path``."""
    path = Path(path)
    if (path / "questions").is_dir():
        return list_shards(path / "questions")
    shards = list_shards(path)
    return [p for p in shards if p.parent.name == "questions"] or shards


def load_questions(path: Path, select: str = "ok", limit: int | None = None) -> pl.DataFrame:
    """(question_id, question) of the selected questions, one row each, sorted by question id."""
    if select not in SELECT:
        raise InputError(f"--questions must be one of {', '.join(SELECT)}, got {select!r}")
    frames = []
    for shard in _shards(path):
        schema = open_shard(shard).schema_arrow
        check_columns(shard, schema, {"question": ("string", is_string)})
        columns = ["question", *(c for c in ("question_id", *_SELECT_COLUMNS) if c in schema.names)]
        if select != "all":
            check_columns(shard, schema, _SELECT_COLUMNS)
        frame = pl.from_arrow(read_table(shard, columns=columns))
        if SELECT[select] is not None:
            frame = frame.filter(SELECT[select])
        if "question_id" not in frame.columns:
            frame = frame.with_columns(
                pl.col("question").map_elements(question_id, pl.String).alias("question_id")
            )
        frames.append(frame.select("question_id", "question").drop_nulls("question"))
    questions = pl.concat(frames).unique("question_id", keep="first").sort("question_id")
    if questions.height == 0:
        raise InputError(f"{path}: no question to sample (selection --questions {select})")
    return questions.head(limit) if limit else questions
