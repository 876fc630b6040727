"""A synthetic OpenThoughts3-math corpus for the vote benchmark, in the ``filter`` output format.

    python bench/corpus.py --traces 850000 -o bench/out/corpus      # ~35 GB of text, ~9 GB on disk

16 traces per question, 20-60 KB each (thinking made of random words so it compresses like prose), rows
of a question scattered over all shards. Answers are written in the equivalent forms real traces use
(fractions/decimals, ``x=3``/``3``, radicals, sets, intervals, text choices, degrees); some traces are
truncated, some revise a boxed answer inside the thinking, and a few carry pathological answers (power
towers, deeply nested fractions, long garbage) that would hang or explode sympy.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from offcurate.curate.filter import OUTPUT_SCHEMA as FILTER_SCHEMA

G = 16
WORDS = (  # noqa: SIM905
    "the of and to in is we that for it this with as be are so let then by on at from which its not all "
    "number sum value case triangle angle side square root equation solve find each term since if consider "
    "now check wait hmm maybe therefore thus prime integer real positive factor divide multiply compute"
).split()
# Each exceeds a 2 s budget by far (verify > 20 s, or parse ~6 s), so its timeout is not a matter of load.
PATHOLOGICAL = [
    "10^{10^{10}}",
    "9^{9^{9^{9}}}",
    "\\frac{" * 30 + "1" + "}{2}" * 30,
    "x^{" * 40 + "2" + "}" * 40,
]


def _forms(rng: random.Random) -> list[list[str]]:
    """Answer classes of one question: each class lists equivalent ways to write one value."""
    a, b = rng.randint(1, 9), rng.randint(2, 9)
    n = rng.randint(2, 500)
    kind = rng.randrange(8)
    if kind == 0:
        return [
            [f"\\frac{{{a}}}{{{b}}}", f"{a}/{b}", f"\\dfrac{{{a}}}{{{b}}}"],
            [f"\\frac{{{a + 1}}}{{{b}}}"],
        ]
    if kind == 1:
        return [["0.5", "\\frac{1}{2}", "\\dfrac12", "1/2"], ["2"], ["0.25"]]
    if kind == 2:
        return [[str(n), f"x = {n}", f"x={n}"], [str(n + 1)], [str(n - 1)]]
    if kind == 3:
        return [[f"{a}\\sqrt{{2}}", f"\\sqrt{{{2 * a * a}}}"], [f"{a}\\sqrt{{3}}"]]
    if kind == 4:
        return [[f"\\{{{a},{n}\\}}", f"\\{{{n},{a}\\}}"], [f"\\{{{a}\\}}"]]
    if kind == 5:
        return [[f"(-{a},{a})", f"-{a}<x<{a}"], [f"[-{a},{a}]"]]
    if kind == 6:
        return [["\\text{(B)}", "B", "(B)"], ["\\text{(C)}", "C"], ["A"]]
    return [[f"{n}^\\circ", f"{n}", f"{n}^{{\\circ}}"], [f"{180 - n}^\\circ"]]


def question_answers(q: int) -> list[str | None]:
    """The 16 final answers of question ``q`` (None = truncated trace), deterministic in ``q``."""
    rng = random.Random(q)
    classes = _forms(rng)
    shape = rng.random()
    if shape < 0.03:
        return [None] * G  # no trace finished
    if shape < 0.55:
        sizes = [G]  # unanimous (often in several written forms)
    elif shape < 0.60:
        sizes = [8, 8]  # exact tie
    else:
        top = rng.randint(7, 14)
        sizes = [top, G - top]
    picked = []
    for cls, size in zip(classes, sizes):
        picked += [rng.choice(cls) for _ in range(size)]
    picked += [rng.choice(classes[-1]) for _ in range(G - len(picked))]
    for i in range(G):
        if rng.random() < 0.04:
            picked[i] = None
        elif rng.random() < 0.002:
            picked[i] = rng.choice(PATHOLOGICAL)
        elif rng.random() < 0.001:
            picked[i] = "".join(rng.choice("abcdefgh+-*^{}") for _ in range(3000))
    rng.shuffle(picked)
    return picked


def trace_text(filler: str, rng: random.Random, answer: str | None, length: int) -> tuple[str, bool]:
    start = rng.randrange(0, len(filler) - length)
    thinking = filler[start : start + length]
    if rng.random() < 0.1:
        thinking += " so the answer is \\boxed{0}. Wait, let me recheck that."
    if answer is None:
        return f"<think>\n{thinking}", False
    final = filler[start : start + rng.randint(400, 2500)]
    return f"<think>\n{thinking}\n</think>\n\n{final}\n\nTherefore the answer is $\\boxed{{{answer}}}$.", True


def make_filler(size: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    words = np.array(WORDS)[rng.integers(0, len(WORDS), size // 5)]
    return " ".join(words.tolist())[:size]


def write_corpus(
    out: Path, traces: int, shards: int, seed: int = 0, min_kb: int = 20, max_kb: int = 60
) -> Path:
    """Write ``traces`` rows (16 per question) over ``shards`` files; returns ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    questions = max(1, traces // G)
    filler = make_filler(8 * 2**20 + max_kb * 1024, seed)
    placement = np.random.default_rng(seed + 1).integers(0, shards, questions * G)
    order = np.argsort(placement, kind="stable")
    bounds = np.searchsorted(placement[order], np.arange(shards + 1))
    for s in range(shards):
        rows = {name: [] for name in FILTER_SCHEMA.names}
        for flat in order[bounds[s] : bounds[s + 1]]:
            q, i = divmod(int(flat), G)
            question = f"Problem {q}: compute the requested quantity for case {q % 97}."
            rng = random.Random(q * G + i + seed)
            text, finished = trace_text(
                filler, rng, question_answers(q)[i], rng.randint(min_kb * 1024, max_kb * 1024)
            )
            rows["question_id"].append(hashlib.sha256(question.encode()).hexdigest()[:16])
            rows["sample_idx"].append(i)
            rows["question"].append(question)
            rows["response"].append(text)
            rows["source"].append("synthetic")
            rows["difficulty"].append(q % 10 + 1)
            rows["finished"].append(finished)
        table = pa.Table.from_pydict(rows, FILTER_SCHEMA)
        pq.write_table(
            table, out / f"train-{s:05d}-of-{shards:05d}.parquet", compression="zstd", row_group_size=512
        )
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--traces", type=int, default=850_000)
    parser.add_argument("--shards", type=int, default=0, help="default: one per ~4000 traces")
    parser.add_argument("-o", "--output", type=Path, default=Path("bench/out/corpus"))
    args = parser.parse_args()
    write_corpus(args.output, args.traces, args.shards or max(1, args.traces // 4000))
    print(f"wrote {args.traces:,} traces to {args.output}", file=sys.stderr)
