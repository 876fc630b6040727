"""A synthetic OpenThoughts3-math corpus for the vote benchmark, in the ``filter`` output format.

    python bench/corpus.py --traces 850000 -o bench/out/corpus      # ~35 GB of text, ~9 GB on disk
    python bench/corpus.py --traces 32000 --slow --variant reused   # the earlier, cache-friendly corpus

16 traces per question, 20-60 KB each (thinking made of random words so it compresses like prose), rows
of a question scattered over all shards; some traces are truncated, some revise a boxed answer inside the
thinking.

Answers (``--variant``):
- ``per-question`` (default), the shape of real data: every question has its own answer, its numbers
  drawn for it, written in 1-3 of the forms real traces use for its kind (integers and ``x = n``, ``1,000``,
  fractions, decimals, radicals, multiples of pi, tuples, intervals, sets, expressions, choices, degrees,
  percents), plus a wrong answer (sometimes two). Nearly every distinct answer string occurs in one
  question only, so a run parses about as many answers as the corpus holds.
- ``reused``: the earlier corpus, whose ~10.8k distinct answers (850k traces) recur across questions, so
  that after the first few thousand questions nearly every parse is a cache hit.
``--slow`` adds, in either variant, about 1 pathological answer per 500 traces (power towers, deeply nested
fractions: each would hang or explode sympy) and 1 per 1000 of long garbage.
"""

from __future__ import annotations

import argparse
import hashlib
import math
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


def _reused_forms(rng: random.Random) -> list[list[str]]:
    """Answer classes of one question of the ``reused`` variant: each lists equivalent ways to write one
    value, drawn from a small range, so the same strings recur across questions."""
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


def _integer(rng: random.Random) -> int:
    return rng.randrange(10 ** rng.choice([1, 2, 2, 3, 3, 3, 4, 4, 5, 6]))


def _integer_forms(n: int, rng: random.Random) -> list[str]:
    forms = [str(n), str(n), f"x = {n}", f"{rng.choice('nxkm')}={n}"]
    if n >= 1000:
        forms += [f"{n:,}", f"{n:,}".replace(",", "{,}")]
    return forms


def _fraction(rng: random.Random) -> tuple[int, int]:
    while True:
        p, q = rng.randint(1, 200), rng.randint(2, 60)
        if math.gcd(p, q) == 1:
            return (-p if rng.random() < 0.15 else p), q


def _fraction_forms(p: int, q: int) -> list[str]:
    sign, a = ("-" if p < 0 else ""), abs(p)
    forms = [f"{sign}\\frac{{{a}}}{{{q}}}", f"{sign}\\dfrac{{{a}}}{{{q}}}", f"{p}/{q}"]
    if 10**6 % q == 0:  # terminates: traces also write it as a decimal
        forms.append(f"{p / q:g}")
    return forms


def _per_question_forms(rng: random.Random) -> list[list[str]]:
    """Answer classes of one question, numbers drawn for it: the right value's written forms first, then
    a wrong value's (two wrong values in about a third of the questions)."""
    kind = rng.choices(range(12), weights=[40, 14, 8, 7, 4, 6, 3, 3, 5, 3, 3, 2])[0]
    a, b, n = rng.randint(2, 40), rng.randint(2, 97), _integer(rng)
    if kind == 0:
        wrong = [n + rng.choice([-2, -1, 1, 2, 10]), _integer(rng)]
        classes = [_integer_forms(n, rng)] + [_integer_forms(w, rng) for w in wrong]
    elif kind == 1:
        p, q = _fraction(rng)
        classes = [_fraction_forms(p, q), _fraction_forms(p + 1, q), _fraction_forms(q, p if p > 1 else 7)]
    elif kind == 2:
        value = rng.randrange(1, 10**5) / 100
        classes = [[f"{value:.2f}", f"{value:g}", f"{value:.3f}"], [f"{value + 0.5:g}"], [f"{value * 2:g}"]]
    elif kind == 3:
        r = rng.choice([2, 3, 5, 6, 7, 10, 11, 13])
        classes = [
            [f"{a}\\sqrt{{{r}}}", f"\\sqrt{{{a * a * r}}}", f"{a} \\sqrt{{{r}}}"],
            [f"{a + 1}\\sqrt{{{r}}}"],
            [f"{a}\\sqrt{{{r + 1}}}"],
        ]
    elif kind == 4:
        classes = [[f"{a}\\pi", f"{a} \\pi", f"\\frac{{{2 * a}\\pi}}{{2}}"], [f"{a + 1}\\pi"], [f"{b}\\pi"]]
    elif kind == 5:
        x, y = _integer(rng), _integer(rng)
        classes = [
            [f"({x}, {y})", f"({x},{y})", f"\\left({x}, {y}\\right)"],
            [f"({y}, {x + 1})"],
            [f"({x}, {y + 1})"],
        ]
    elif kind == 6:
        classes = [[f"(-{a}, {b})", f"-{a}<x<{b}"], [f"[-{a}, {b}]"], [f"(-{b}, {a})"]]
    elif kind == 7:
        classes = [
            [f"\\{{{a}, {b}\\}}", f"{a}, {b}", f"\\{{{b},{a}\\}}"],
            [f"\\{{{a}\\}}"],
            [f"{a}, {b + 1}"],
        ]
    elif kind == 8:
        classes = [[f"{a}x+{b}", f"{b}+{a}x", f"{a}x + {b}"], [f"{a}x-{b}"], [f"{b}x+{a}"]]
    elif kind == 9:
        letters = rng.sample("ABCDE", 3)
        classes = [[f"\\text{{({c})}}", c, f"({c})"] for c in letters]
    elif kind == 10:
        m = rng.randint(1, 179)
        classes = [[f"{m}^\\circ", f"{m}", f"{m}^{{\\circ}}"], [f"{180 - m}^\\circ"], [f"{m + 1}^\\circ"]]
    else:
        m = rng.randint(1, 99)
        classes = [[f"{m}\\%", f"{m}", f"{m} \\%"], [f"{100 - m}\\%"], [f"{m / 100:g}\\%"]]
    right = rng.sample(classes[0], min(len(classes[0]), rng.choice([1, 2, 2, 3])))
    return [right] + classes[1 : 2 if rng.random() < 0.65 else 3]


VARIANTS = {"per-question": _per_question_forms, "reused": _reused_forms}


def question_answers(q: int, variant: str = "per-question", slow: bool = False) -> list[str | None]:
    """The 16 final answers of question ``q`` (None = truncated trace), deterministic in ``q``."""
    rng = random.Random(q)
    classes = VARIANTS[variant](rng)
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
        elif slow and rng.random() < 0.002:
            picked[i] = rng.choice(PATHOLOGICAL)
        elif slow and rng.random() < 0.001:
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
    out: Path,
    traces: int,
    shards: int,
    seed: int = 0,
    min_kb: int = 20,
    max_kb: int = 60,
    variant: str = "per-question",
    slow: bool = False,
) -> Path:
    """Write ``traces`` rows (16 per question) over ``shards`` files; returns ``out``. ``variant`` and
    ``slow``: see the module doc."""
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
                filler, rng, question_answers(q, variant, slow)[i], rng.randint(min_kb * 1024, max_kb * 1024)
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
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="per-question")
    parser.add_argument("--slow", action="store_true", help="~1 pathological answer per 500 traces")
    args = parser.parse_args()
    shards = args.shards or max(1, args.traces // 4000)
    write_corpus(args.output, args.traces, shards, variant=args.variant, slow=args.slow)
    print(f"wrote {args.traces:,} traces to {args.output}", file=sys.stderr)
