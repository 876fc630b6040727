"""``offcurate sample``: a difficulty-aware training mix from a vote output, whole question groups at a time.

    offcurate sample -i data/voted -o data/mix --weights hard=0.5,medium=0.3,easy=0.2
    offcurate sample -i data/voted -o data/mix --bucket-by base_pass_rate --base data/stats --counts hard=2000
    offcurate train -i data/mix -o runs/r1 --model ...                  # train reads the mix as it reads vote

Only questions with a majority label (status ok) are eligible. Each gets a bucket (``buckets.py``: teacher
pass rate or vote share, the base model's pass rate from ``stats --base-rollouts``, or the dataset's
``difficulty``). ``--weights`` split ``--questions N`` over buckets (N defaults to the most the non-empty
buckets can fill in those proportions); ``--counts`` asks for exact numbers; a bucket that holds fewer
questions than asked gives all it has, and the table and summary say by how much it fell short. A question
comes with all its trajectories (``--max-per-question`` keeps a seeded random subset), so group advantages
stay meaningful.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pyarrow as pa

from .buckets import UNLABELED, assign_buckets, bucket_labels, check_measure
from .gold import has_gold
from .io.card import write_vote_layout_card
from .io.errors import InputError
from .io.report import StageReport, frame_table, progress
from .io.shards import (
    ShardWriter,
    atomic_output,
    check_columns,
    check_output,
    is_float,
    is_string,
    iter_batches,
    list_shards,
    open_shard,
    read_table,
    shard_name,
    write_table,
)
from .stats import read_questions
from .vote import QUESTION_SCHEMA
from .vote import REQUIRED as TRAJECTORY_COLUMNS
from .vote_label import GOLD_QUESTION_SCHEMA

BUCKET = pa.field("bucket", pa.string())
N_TAKEN = pa.field("n_taken", pa.int64())  # trajectories in the mix (n_samples counts the whole vote group)


def mix_schemas(shards: list[Path], gold: bool) -> tuple[pa.Schema, pa.Schema]:
    """(trajectories, questions) of the mix: the input's trajectory columns (a vote output of a set with
    gold answers has more) plus ``bucket``, and the vote's question columns plus ``bucket``, ``n_taken``."""
    schemas = {}
    for path in shards:
        schema = open_shard(path).schema_arrow
        fields = [f for f in schema if f.name != BUCKET.name]
        schemas.setdefault(tuple(f.name for f in fields), (path, pa.schema(fields)))
    if len(schemas) > 1:
        (a, _), (b, _) = list(schemas.values())[:2]
        raise InputError(f"the trajectory shards have different columns: {a} and {b}")
    _, trajectories = next(iter(schemas.values()))
    questions = GOLD_QUESTION_SCHEMA if gold else QUESTION_SCHEMA
    return trajectories.append(BUCKET), questions.append(BUCKET).append(N_TAKEN)


def parse_shares(text: str, option: str) -> dict[str, float]:
    """``hard=0.5,medium=0.3`` -> {"hard": 0.5, "medium": 0.3}; a one-line error on anything else."""
    shares = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.partition("=")
        try:
            shares[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or shares[name.strip()] < 0:
            raise InputError(f"{option}: expected bucket=number pairs separated by commas, got {item!r}")
    if not shares or sum(shares.values()) <= 0:
        raise InputError(f"{option}: give at least one bucket a positive share, got {text!r}")
    return shares


def allocate(available: dict[str, int], weights: dict[str, float], total: int | None) -> dict[str, int]:
    """Targets per bucket: ``total`` split by ``weights`` (largest remainder, so they sum to ``total``);
    without ``total``, the largest total every non-empty weighted bucket can fill. An empty bucket does not
    cap it (it would make the whole mix empty): it keeps its target and comes out short (pure)."""
    norm = {b: w / sum(weights.values()) for b, w in weights.items() if w > 0}
    if total is None:
        fill = [available[b] / w for b, w in norm.items() if available.get(b, 0) > 0]
        total = int(min(fill, default=0) + 1e-9)
    exact = {b: total * w for b, w in norm.items()}
    targets = {b: int(x) for b, x in exact.items()}
    by_remainder = sorted(norm, key=lambda b: (-(exact[b] - targets[b]), b))
    for b in by_remainder[: total - sum(targets.values())]:
        targets[b] += 1
    return targets


def choose_questions(buckets: pl.DataFrame, targets: dict[str, int], seed: int) -> pl.DataFrame:
    """A seeded choice of ``targets[b]`` question ids from each bucket (all of them when there are fewer)."""
    picked = []
    for name, target in targets.items():
        ids = sorted(buckets.filter(pl.col("bucket") == name)["question_id"].to_list())
        random.Random(f"{seed}:{name}").shuffle(ids)
        picked += ids[:target]
    return buckets.filter(pl.col("question_id").is_in(picked))


def keep_per_question(index: pl.DataFrame, max_per_question: int | None, seed: int) -> pl.DataFrame:
    """(question_id, sample_idx) rows to keep: all, or a seeded random ``max_per_question`` per question."""
    if not max_per_question:
        return index
    grouped = index.group_by("question_id").agg("sample_idx").sort("question_id")
    kept = {"question_id": [], "sample_idx": []}
    for qid, samples in grouped.iter_rows():
        chosen = sorted(
            random.Random(f"{seed}:{qid}").sample(sorted(samples), min(max_per_question, len(samples)))
        )
        kept["question_id"] += [qid] * len(chosen)
        kept["sample_idx"] += chosen
    return pl.DataFrame(kept, schema={"question_id": pl.String, "sample_idx": pl.Int64})


def read_base_pass_rate(base: Path | None) -> pl.DataFrame:
    """(question_id, base_pass_rate) from ``stats --base-rollouts`` output (the folder or the file)."""
    if base is None:
        raise InputError(
            "--bucket-by base_pass_rate needs --base: the output folder of `stats --base-rollouts`"
        )
    path = Path(base) / "base_pass_rate.parquet" if Path(base).is_dir() else Path(base)
    if not path.is_file():
        raise InputError(f"{path}: not found (run `offcurate stats --base-rollouts ...` to make it)")
    table = read_table(path)
    check_columns(
        path, table.schema, {"question_id": ("string", is_string), "base_pass_rate": ("float64", is_float)}
    )
    return pl.from_arrow(table).select("question_id", "base_pass_rate")


def trajectory_shards(voted: Path) -> list[Path]:
    """The trajectories/*.parquet of a vote output or mix (slices under one parent included)."""
    shards = [p for p in list_shards(voted) if p.parent.name == "trajectories"]
    if not shards:
        raise InputError(f"{voted}: no trajectories/*.parquet inside (is this an `offcurate vote` output?)")
    for path in shards:
        check_columns(
            path, open_shard(path).schema_arrow, {**TRAJECTORY_COLUMNS, "reward": ("float64", is_float)}
        )
    return shards


def _targets(
    available: dict[str, int], names: list[str], weights: str | None, counts: str | None, total: int | None
) -> dict[str, int]:
    if weights and counts:
        raise InputError("give --weights or --counts, not both")
    if total is not None and not weights:
        raise InputError("--questions goes with --weights (with --counts, the counts are the total)")
    shares = (
        parse_shares(weights or counts, "--weights" if weights else "--counts") if weights or counts else {}
    )
    unknown = sorted(set(shares) - set(names))
    if unknown:
        raise InputError(f"unknown bucket {', '.join(unknown)}: the buckets are {', '.join(names)}")
    if weights:
        return allocate(available, shares, total)
    if counts:
        return {b: int(c) for b, c in shares.items()}
    return dict(available)


def run_sample(
    input_dir: Path,
    output: Path,
    bucket_by: str = "pass_rate",
    edges: tuple[float, ...] | None = None,
    weights: str | None = None,
    counts: str | None = None,
    total: int | None = None,
    max_per_question: int | None = None,
    base: Path | None = None,
    seed: int = 0,
    overwrite: bool = False,
) -> StageReport:
    check_output(output, overwrite, (input_dir, base))
    report = StageReport("sample", output=str(output))
    shards = trajectory_shards(input_dir)
    questions = read_questions(input_dir).filter(pl.col("status") == "ok")
    if questions.height == 0:
        raise InputError(f"{input_dir}: no question with status ok; nothing to sample")
    if bucket_by == "base_pass_rate":
        questions = questions.join(read_base_pass_rate(base), on="question_id", how="left")
    buckets = assign_buckets(questions, bucket_by, edges)
    available = dict(buckets.group_by("bucket").len().iter_rows())
    names = [*bucket_labels(edges or check_measure(bucket_by), bucket_by), UNLABELED]
    targets = _targets(available, names, weights, counts, total)
    chosen = choose_questions(buckets, targets, seed)
    if chosen.height == 0:
        raise InputError("the mix would be empty: every asked-for bucket is empty or has a target of 0")

    index = pl.concat(pl.from_arrow(read_table(p, ["question_id", "sample_idx"])) for p in shards)
    index = index.with_columns(pl.col("sample_idx").cast(pl.Int64)).join(
        chosen.select("question_id"), on="question_id", how="semi"
    )
    keep = keep_per_question(index, max_per_question, seed).join(
        chosen.select("question_id", "bucket"), on="question_id"
    )
    trajectory_schema, question_schema = mix_schemas(shards, has_gold(questions))
    with atomic_output(output, overwrite, inputs=(input_dir, base)) as tmp:
        (tmp / "trajectories").mkdir()
        (tmp / "questions").mkdir()
        written = _write_trajectories(shards, keep, tmp / "trajectories", trajectory_schema)
        taken = keep.group_by("question_id").agg(pl.len().cast(pl.Int64).alias("n_taken"))
        out_questions = chosen.join(taken, on="question_id").select(*question_schema.names)
        out_questions = out_questions.sort("question_id")
        write_table(out_questions.to_arrow().cast(question_schema), tmp / "questions" / shard_name(0, 1))
        table = bucket_table(names, available, targets, chosen, keep)
        table.write_parquet(tmp / "buckets.parquet")
        title = "Training mix (offcurate sample)"
        extra = {"buckets": ("buckets.parquet", table.to_arrow().schema)}
        write_vote_layout_card(tmp, title, SAMPLE_CARD, trajectory_schema, question_schema, extra)
    report.counts.update(
        {
            "bucket by": bucket_by,
            "eligible questions (status ok)": questions.height,
            "questions taken": chosen.height,
            "trajectories taken": keep.height,
            "questions short (asked of buckets that held too few)": int(table["short"].sum()),
            "all-positive questions taken": int(chosen["all_positive"].sum()),
            "output shards": written,
        }
    )
    report.tables.append(frame_table(table, "offcurate sample: buckets"))
    return report.finish()


def bucket_table(
    names: list[str], available: dict, targets: dict, chosen: pl.DataFrame, keep: pl.DataFrame
) -> pl.DataFrame:
    """What was asked of each bucket and what it gave (``short`` > 0: it held too few questions)."""
    taken = dict(chosen.group_by("bucket").len().iter_rows())
    traces = dict(keep.group_by("bucket").len().iter_rows())
    rows = [
        (
            b,
            available.get(b, 0),
            targets.get(b, 0),
            taken.get(b, 0),
            traces.get(b, 0),
            max(0, targets.get(b, 0) - taken.get(b, 0)),
        )
        for b in names
        if available.get(b, 0) or targets.get(b, 0)
    ]
    schema = {
        "bucket": pl.String,
        "available": pl.Int64,
        "target": pl.Int64,
        "taken": pl.Int64,
        "trajectories": pl.Int64,
        "short": pl.Int64,
    }
    return pl.DataFrame(rows, schema=schema, orient="row")


def _write_trajectories(shards: list[Path], keep: pl.DataFrame, folder: Path, schema: pa.Schema) -> int:
    """Stream every shard, keep the chosen rows with their bucket, one output shard per input shard."""
    parts = []
    with progress() as bar:
        task = bar.add_task("sample: write trajectories", total=len(shards))
        for n, path in enumerate(shards):
            writer = None
            for batch in iter_batches(path, columns=schema.names[:-1]):
                frame = pl.from_arrow(batch).with_columns(pl.col("sample_idx").cast(pl.Int64))
                frame = frame.join(keep, on=["question_id", "sample_idx"], how="inner", maintain_order="left")
                if frame.height:
                    writer = writer or ShardWriter(folder / f".part-{n:05d}.parquet", schema)
                    writer.write(frame.to_arrow())
            if writer is not None:
                writer.close()
                parts.append(writer.path)
            bar.advance(task)
    for i, part in enumerate(parts):
        part.rename(folder / shard_name(i, len(parts)))
    return len(parts)


SAMPLE_CARD = """
A training mix drawn from an `offcurate vote` output by difficulty bucket (see `buckets.parquet`: what was
available, asked for and taken per bucket). `trajectories`: the vote columns plus `bucket`, whole question
groups (or a seeded subset of `--max-per-question` traces each); `questions`: the chosen questions' vote
rows plus `bucket`. `offcurate train -i THIS_FOLDER` reads it as it reads a vote output.
"""
