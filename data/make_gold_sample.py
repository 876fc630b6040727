"""Regenerate the embedded OpenR1-Math-220k-shaped sample in ``data/sample_openr1/`` (deterministic).

    python -m offcurate.data.make_gold_sample              # rewrites data/sample_openr1/: 1 shard + README.md
    python -m offcurate.data.make_gold_sample -o /tmp/s    # the same files somewhere else

It lets ``offcurate pipeline --format openr1-math`` (download --sample -> filter -> vote -> stats) run on a
fresh machine and report the pseudo-label accuracy. It has the columns of open-r1/OpenR1-Math-220k (card at
075afe03dbbc6e7b8bd35af1e4259957f0beb07d): one row per problem, 1-4 teacher traces in ``generations``, the
problem's gold ``answer`` and the set's per-trace verdicts ``correctness_math_verify``. The problems and
traces are those of the OpenThoughts3-shaped sample (``make_sample.QUESTIONS``, their first answer class is
the correct one): each problem gets a few of its traces, drawn at random, so some majorities are wrong.
The verdicts are computed here as the dataset's are, with plain math-verify on the whole generation
(``verify(parse("$gold$"), parse(generation))``), so they can differ from offcurate's reading of the final
part (a box inside an unfinished thinking). The awkward rows of the real set are there too: a null and a
blank trace in a ``generations`` list, a verdict list that does not line up with its traces, problems
without a gold, a gold math-verify cannot read, a problem with a single trace.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from pathlib import Path

import pyarrow as pa

from ..curate.io.shards import shard_name, write_table
from . import GOLD_SAMPLE_DIR
from .make_sample import QUESTIONS, Question, _trace

SCHEMA = pa.schema(
    [
        ("problem", pa.string()),
        ("solution", pa.string()),
        ("answer", pa.string()),
        ("problem_type", pa.string()),
        ("question_type", pa.string()),
        ("source", pa.string()),
        ("uuid", pa.string()),
        ("is_reasoning_complete", pa.list_(pa.bool_())),
        ("generations", pa.list_(pa.string())),
        ("correctness_math_verify", pa.list_(pa.bool_())),
        ("correctness_llama", pa.list_(pa.bool_())),
        ("finish_reasons", pa.list_(pa.string())),
        ("correctness_count", pa.int64()),
        ("messages", pa.list_(pa.struct([("content", pa.string()), ("role", pa.string())]))),
    ]
)
UNREADABLE_GOLD = r"\frac{3}{"  # a gold cut short, as scraped answers sometimes are


def _outcomes(q: Question) -> list[tuple[int | None, str | None]]:
    """The 16 traces' (class, written form) of a question, as the OpenThoughts3 sample draws them."""
    outcomes: list[tuple[int | None, str | None]] = [(None, None)] * q.unanswered
    for index, cluster in enumerate(q.clusters):
        outcomes += [(index, form) for form, count in cluster for _ in range(count)]
    return outcomes


def verdict(gold: str | None, generation: str | None) -> bool | None:
    """The dataset's kind of verdict: math-verify on the whole generation against ``$gold$``."""
    if gold is None or generation is None:
        return None
    from math_verify import parse, verify

    return bool(verify(parse(f"${gold}$"), parse(generation)))


def _finished(text: str | None) -> bool | None:
    return None if text is None else ("</think>" in text or "<think>" not in text)


def _row(
    text: str, solution: str, gold: str | None, kind: str, source: str, traces: list[str | None]
) -> dict:
    verdicts = [verdict(gold, t) for t in traces]
    return {
        "problem": text,
        "solution": solution,
        "answer": gold,
        "problem_type": kind,
        "question_type": "math-word-problem",
        "source": source,
        "uuid": hashlib.sha1(text.encode()).hexdigest()[:32],
        "is_reasoning_complete": [_finished(t) for t in traces],
        "generations": traces,
        "correctness_math_verify": verdicts,
        "correctness_llama": None,
        "finish_reasons": [None if t is None else ("stop" if _finished(t) else "length") for t in traces],
        "correctness_count": sum(v is True for v in verdicts),
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": traces[0] or ""}],
    }


def build_gold_sample(seed: int = 0) -> pa.Table:
    """One row per problem of ``make_sample.QUESTIONS`` (1-4 of its traces, gold = the first form of its
    correct class, none for the questions the sample leaves unanswered), then the awkward rows."""
    rng = random.Random(seed)
    rows = []
    for number, q in enumerate(QUESTIONS):
        outcomes = _outcomes(q)
        rng.shuffle(outcomes)
        k = 1 if number == 5 else rng.choice((2, 3, 4, 4))  # one problem with a single trace
        traces: list[str | None] = [_trace(q, rng, cluster, form) for cluster, form in outcomes[:k]]
        gold = q.clusters[0][0][0] if q.clusters else None
        if number == 7:
            traces.insert(1, None)  # a null inside the list: dropped and counted
        if number == 9:
            traces.append("   ")  # a blank trace
        row = _row(q.text, q.solution, gold, q.family, q.source, traces)
        if number == 11:  # verdicts that do not line up with the traces: not used
            row["correctness_math_verify"] = row["correctness_math_verify"][:-1]
        rows.append(row)
    thinking = "<think>\nDividing by a fraction multiplies by its reciprocal: 6 * 4/3 = 8.\n</think>"
    traces = [f"{thinking}\n\n$\\boxed{{{f}}}$" for f in ("8", r"\frac{8}{1}", "8")]
    rows.append(
        _row(
            r"Compute $6 \div \frac{3}{4}$.", "6 * 4/3 = 8.", UNREADABLE_GOLD, "fraction", "synthetic", traces
        )
    )
    return pa.Table.from_pylist(rows, SCHEMA)


def card(table: pa.Table) -> str:
    golds = table.column("answer").to_pylist()
    traces = sum(len(g) for g in table.column("generations").to_pylist())
    return f"""---
license: apache-2.0
language:
- en
pretty_name: OpenR1-shaped sample (offcurate)
size_categories:
- n<1K
configs:
- config_name: default
  data_files:
  - split: train
    path: "*.parquet"
---

# OpenR1-Math-220k-shaped sample

A small, synthetic dataset with the columns of
[open-r1/OpenR1-Math-220k](https://huggingface.co/datasets/open-r1/OpenR1-Math-220k) (card revision
075afe03dbbc6e7b8bd35af1e4259957f0beb07d), embedded in offcurate so that
`offcurate pipeline --format openr1-math -o runs/gold` runs on a fresh machine and reports how often the
majority vote matches the gold. It is test data: the problems and traces are those of offcurate's
OpenThoughts3-shaped sample, not taken from OpenR1.

{table.num_rows} problems, {traces} list entries in `generations` (1-4 per problem, a null and a blank
one among them), {sum(g is not None for g in golds)} golds in `answer` (one that math-verify cannot
read: `{UNREADABLE_GOLD}`). `correctness_math_verify` is plain math-verify on the whole generation
against `$answer$`, as the dataset computes it (one row's list is cut short, so it does not line up).

Regenerate after editing `data/make_gold_sample.py`: `python -m offcurate.data.make_gold_sample`.
"""


def write_gold_sample(folder: Path | str = GOLD_SAMPLE_DIR, seed: int = 0) -> list[Path]:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table = build_gold_sample(seed)
    path = folder / shard_name(0, 1)
    write_table(table, path)
    for stale in sorted(folder.glob("train-*.parquet")):
        if stale != path:
            stale.unlink()
    readme = folder / "README.md"
    readme.write_text(card(table), encoding="utf-8")
    return [path, readme]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m offcurate.data.make_gold_sample", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=GOLD_SAMPLE_DIR, help="folder (default: %(default)s)"
    )
    args = parser.parse_args(argv)
    for path in write_gold_sample(args.output):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
