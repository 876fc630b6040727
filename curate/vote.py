"""``offcurate vote``: extract final answers, cluster equivalent ones per question, score every trace.

    offcurate vote -i data/math -o data/voted [--workers 2] [--timeout 2] [--shard-index 0 --num-shards 8]

Three passes; what is resident is one shard's small rows or one partition of questions, never the text
and never a table of the whole corpus (``spill.py``):
1. stream each shard's ``response`` column, extract answers from each trace's tail, spill the small rows by
   partition of the question-hash space (``vote_shards.extract_shard``);
2. label one partition at a time in a process pool (math-verify, bounded per step, watchdog per
   question), spill the labels by input shard (``vote_label.label_partitions``);
3. stream the shards again and write them with ``answer``, ``cluster``, ``reward`` attached
   (``vote_shards.write_shard``).
Writes ``trajectories/*.parquet`` and ``questions/*.parquet`` (see the card in the output folder); the spill
lives in the temporary output folder and is removed before it is renamed into place.

Where the input carries a ``gold`` column (``filter --format openr1-math`` and the other sets with reference
answers), the vote is the same, and every trace also gets ``gold_reward`` and every question ``gold_agrees``
(``curate/gold.py``): the summary then reports the pseudo-label accuracy, and ``--min-gold-agreement``
makes a run whose accuracy falls below it fail (``check_gold_agreement``).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import shutil
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path

import polars as pl
import pyarrow as pa

from .answers.equivalence import LabelQuestion
from .answers.pool import VerifyPool, die_with_parent
from .answers.scoring import LabelWithGold
from .gold import ACCURACY, accuracy_table, display_table, gold_summary
from .io.card import write_vote_layout_card
from .io.errors import InputError, OffcurateError
from .io.report import StageReport, frame_table, progress
from .io.shards import (
    ShardWriter,
    atomic_output,
    check_columns,
    check_output,
    is_bool,
    is_integer,
    is_string,
    list_shards,
    open_shard,
    shard_name,
)
from .io.spill import ROWS_PER_PARTITION, partitions_for
from .vote_label import DROPPED, FAST_READS, GOLD_QUESTION_SCHEMA, QUESTION_SCHEMA, READS, label_partitions
from .vote_shards import (
    LABEL_FIELDS,
    TRAJECTORY_SCHEMA,
    Layout,
    Slicing,
    extract_shard,
    part_file,
    write_shard,
)

__all__ = ["QUESTION_SCHEMA", "TRACE_LABEL_SCHEMA", "TRAJECTORY_SCHEMA", "run_vote"]

REQUIRED = {
    "question_id": ("string", is_string),
    "sample_idx": ("int64", is_integer),
    "question": ("string", is_string),
    "response": ("string", is_string),
    "source": ("string", is_string),
    "difficulty": ("int64 (nullable)", is_integer),
    "finished": ("bool", is_bool),
}
TRACE_LABEL_SCHEMA = pa.schema([("question_id", pa.string()), ("sample_idx", pa.int64()), *LABEL_FIELDS])
OPTIONAL = {"gold": ("string", is_string), "dataset_verdict": ("bool", is_bool)}
COPIED = "  ... text copied, not re-encoded"  # output shards made by ``vote_splice``


def input_layout(shards: list[Path]) -> Layout:
    """Which optional columns (``gold``, ``dataset_verdict``) the shards carry; every shard the same."""
    layouts = {}
    for path in shards:
        schema = open_shard(path).schema_arrow
        present = {name: name in schema.names for name in OPTIONAL}
        check_columns(path, schema, {name: OPTIONAL[name] for name, there in present.items() if there})
        layouts.setdefault(Layout(present["gold"], present["dataset_verdict"]), path)
    if len(layouts) > 1:
        (first, first_path), (other, other_path) = list(layouts.items())[:2]
        raise InputError(
            f"the input shards mix layouts: {first_path} has gold={first.gold}, "
            f"dataset_verdict={first.verdicts}; {other_path} gold={other.gold}, "
            f"dataset_verdict={other.verdicts} (were two filter outputs put in one folder?)"
        )
    return next(iter(layouts))


def check_gold_agreement(report: StageReport, minimum: float) -> None:
    """``vote --min-gold-agreement``: one line and exit 2 when the pseudo-label accuracy is below it."""
    accuracy = report.counts.get(ACCURACY)
    if not isinstance(accuracy, float):
        raise InputError(
            "--min-gold-agreement: no labeled question has a readable gold, so the accuracy is unknown"
        )
    if accuracy < minimum:
        right = report.counts["  ... majority answer right"]
        raise OffcurateError(
            f"pseudo-label accuracy {accuracy:.4f} ({right} of {report.counts['ok questions with a gold']} "
            f"labeled questions with a gold) is below --min-gold-agreement {minimum:g}"
        )


def _per_shard(
    what: str, fn, shards: dict[int, Path], rows: list[int], executor: Executor, *args
) -> dict[int, int]:
    """Run ``fn(path, shard_no, *args)`` for every shard in parallel; returns its result per shard."""
    futures = {executor.submit(fn, path, n, *args): n for n, path in shards.items()}
    done = {}
    with progress() as bar:
        task = bar.add_task(what, total=sum(rows[n] for n in shards))
        for future in as_completed(futures):
            done[futures[future]] = future.result()
            bar.advance(task, rows[futures[future]])
    return done


def run_vote(
    input_dir: Path,
    output: Path,
    workers: int | None = None,
    timeout: float | None = 2.0,
    shard_index: int = 0,
    num_shards: int = 1,
    overwrite: bool = False,
    rows_per_partition: int = ROWS_PER_PARTITION,
    min_gold_agreement: float | None = None,
) -> StageReport:
    """Label every question of ``input_dir`` (or of one slice of it) into ``output``; see the module doc.
    ``rows_per_partition`` sizes the spill partitions (tests shrink it to exercise many);
    ``min_gold_agreement`` is only checked for being usable here (``check_gold_agreement`` judges it)."""
    if not 0 <= shard_index < num_shards:
        raise InputError(f"--shard-index must be in [0, {num_shards}), got {shard_index}")
    if min_gold_agreement is not None and not 0 <= min_gold_agreement <= 1:
        raise InputError(f"--min-gold-agreement must be in [0, 1], got {min_gold_agreement:g}")
    check_output(output, overwrite, (input_dir,))
    workers = workers or os.cpu_count() or 1
    report = StageReport("vote", output=str(output))
    shards = list_shards(input_dir)
    rows = []
    for path in shards:
        shard = open_shard(path)
        check_columns(path, shard.schema_arrow, REQUIRED)
        rows.append(shard.metadata.num_rows)
    if sum(rows) == 0:
        raise InputError(f"{input_dir}: the input shards hold no rows")
    layout = input_layout(shards)
    if min_gold_agreement is not None and not layout.gold:
        raise InputError(
            f"--min-gold-agreement: {input_dir} has no gold column (filter a set with gold answers, e.g. "
            "--format openr1-math, or --format columns --gold-col)"
        )
    question_schema = GOLD_QUESTION_SCHEMA if layout.gold else QUESTION_SCHEMA
    slicing = Slicing(partitions_for(sum(rows) // num_shards, rows_per_partition), shard_index, num_shards)

    spawn = mp.get_context("spawn")  # fork after polars/arrow threads start is unsafe
    with (
        atomic_output(output, overwrite, inputs=(input_dir,)) as tmp,
        ProcessPoolExecutor(
            min(workers, len(shards)), mp_context=spawn, initializer=die_with_parent, initargs=(os.getpid(),)
        ) as executor,
        VerifyPool(
            LabelWithGold() if layout.gold else LabelQuestion(), workers, timeout, start=False
        ) as pool,
    ):
        pool.start()  # workers import math-verify while pass 1 runs
        spill = tmp / "spill"
        spill.mkdir()
        for folder in ("trajectories", "questions"):
            (tmp / folder).mkdir()
        every = dict(enumerate(shards))
        kept = _per_shard(
            "vote: extract answers", extract_shard, every, rows, executor, slicing, spill, layout
        )
        if sum(kept.values()) == 0:
            raise InputError(f"{input_dir}: no trajectories in slice {shard_index} of {num_shards}")
        questions = ShardWriter(tmp / "questions" / shard_name(0, 1), question_schema)
        counts = label_partitions(spill, slicing.partitions, sum(kept.values()), pool, questions, input_dir)
        questions.close()
        out = tmp / "trajectories"
        in_slice = {n: path for n, path in every.items() if kept[n]}
        written = _per_shard(
            "vote: write trajectories", write_shard, in_slice, rows, executor, slicing, spill, out, layout
        )
        shutil.rmtree(spill)
        parts = [part_file(out, n) for n in sorted(written) if written[n][0]]
        for i, part in enumerate(parts):
            part.rename(out / shard_name(i, len(parts)))
        title = "Majority-vote labeled trajectories (offcurate vote)"
        card = VOTE_CARD + (GOLD_CARD if layout.gold else "")
        write_vote_layout_card(tmp, title, card, layout.output, question_schema)
        labeled = pl.read_parquet(questions.path) if layout.gold else None

    report.counts.update(
        {
            **{name: counts[name] for name in ("trajectories", "answered", "questions")},
            **{f"status {s}": counts[f"status {s}"] for s in ("ok", "tie", "no_answer")},
            "all-positive questions": counts["all-positive questions"],
            "math-verify timeouts": counts["math-verify timeouts"],
            "hard timeouts (worker killed)": counts["hard timeouts (worker killed)"],
            DROPPED: counts[DROPPED],
            READS: counts[READS],
            FAST_READS: counts[FAST_READS],
            "output shards": len(parts),
            COPIED: sum(copied for rows, copied in written.values() if rows),
            "spill partitions": slicing.partitions,
        }
    )
    if num_shards > 1:
        report.counts["slice"] = f"{shard_index} of {num_shards}"
    if labeled is not None:
        report.counts.update(gold_summary(labeled))
        for by, label in (("pass_rate", "pass rate"), ("difficulty", "difficulty")):
            if by == "difficulty" and labeled["difficulty"].null_count() == labeled.height:
                continue  # the set has no difficulty
            table = display_table(accuracy_table(labeled, by), label)
            title = f"offcurate vote: pseudo-labels against the gold, per {label} (traces: reward = gold)"
            report.tables.append(frame_table(table, title))
    return report.finish()


VOTE_CARD = """
Two configs. `trajectories`: every filtered trajectory plus `answer` (the final answer as written, null when
the trace is unfinished, has no answer, or its answer timed out in math-verify), `cluster` (0 = the majority
class of mathematically equivalent answers, null without answer) and `reward` (1.0 in the majority class,
0.0 otherwise; null when the question's status is not `ok`). `questions`: one row per question with
`status` (`ok`, `tie` when the two largest classes are equally large, `no_answer`), `majority_answer` (the
most written form in the majority class), `vote_share` = majority votes / answered traces, `pass_rate` =
majority votes / all traces, and `all_positive` (status ok and every trace rewarded 1).
"""
GOLD_CARD = """
The input carries the dataset's gold answers. `trajectories` also has `gold_reward` (1.0 when math-verify's
`verify(gold, answer)` holds, one direction; 0.0 otherwise or without an answer; null when the question has
no readable gold). `questions` also has `gold`, `gold_status` (`ok`, `missing`, `unreadable`,
`conflicting`), `gold_votes` and `gold_pass_rate` (traces right by the gold), `gold_agrees` (the majority
answer is right; null unless status is ok and the gold readable) and `rewards_agreeing_gold` (traces
whose vote reward equals their gold reward).
"""
