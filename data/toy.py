"""The toy task: a synthetic teacher-trace set in OpenThoughts3's raw layout, with known gold answers.

    python -m offcurate.data.toy -o runs/toy-data --seed 0     # raw/ warmup/ benchmarks/ toy.json
    from offcurate.data.toy import write_toy_data
    write_toy_data(Path("runs/toy-data"), seed=0)

Why it exists: the blog's claims are comparisons between training runs, and a CPU must be able to run
them in minutes. So the task is small enough for a ~1M-parameter model, yet has the structure the method
is about. Two skills over the digits of a number share one scratchpad (a running total, one line a digit):

- ``sum`` ("What is the sum of the digits of 53146?" -> ``5+3=8``, ``8+1=9``, ...): the teacher is always
  right. Every question's 8 traces are positive: an all-positive group, which plain off-policy GRPO
  (``--bias 0``) gives A = 0.
- ``signed`` ("What is the alternating sum of the digits of 9271?" -> ``9-2=7``, ``7+7=14``, ...): the
  teacher slips on 1 to 3 of each question's 8 traces, in ways a model does (a sign taken wrong, a
  step off by one or ten, a digit skipped, a final answer copied wrong), so every group is mixed, its
  majority is the gold, and vote's rewards equal the gold's.

A number's digits are distinct and nonzero (each digit one token, found once in the question), 5 or 6 of
them in raw/ and the benchmarks but mostly 3 or 4 in the warm-up (2% are long): the base model learns
the skills on short numbers and is right only sometimes on longer ones, which the teacher's traces then
teach (Figure 2).
Right traces of one question differ in their wording (an opening line or none, three closing phrases),
as a teacher's samples do. Traces look like QwQ's: ``<think>\n...\n</think>\n\n... \boxed{N}.``

Folders written under ``out`` (all deterministic in ``seed``):

- ``raw/``: the teacher traces, one row per trace, columns ``difficulty``, ``source``, ``domain``,
  ``conversations`` as on the Hub (``offcurate pipeline -i out/raw`` reads them);
- ``warmup/``: one right trace per question of a disjoint set of questions, in the vote layout with
  reward 1 (``question_id``, ``sample_idx``, ``question``, ``response``, ``reward``): the SFT warm-up that
  makes the base model (``train/toy_base.py``) a post-training start, not a random one;
- ``benchmarks/toy-sum.jsonl``, ``benchmarks/toy-signed.jsonl``: held-out questions with ``question``
  and ``answer`` (``offcurate eval -b``), disjoint from raw/ and warmup/;
- ``benchmarks/trained-sum.jsonl``: ``trained_bench`` of raw/'s own sum questions (all-positive: trained
  on, not held out), the first by question id, as ``rollout --questions all-positive --limit N`` picks
  them: each model's pass@1 there is read against the base's pass rate in Figure 2's rollouts;
- ``toy.json``: the spec, the seed and the counts.
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..curate.io.ids import question_id
from ..curate.io.shards import shard_name, write_table

SKILLS = ("sum", "signed")
SOURCE = "offcurate/toy-{skill}"
RAW_SCHEMA = pa.schema(
    [
        ("difficulty", pa.int64()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ]
)
WARMUP_SCHEMA = pa.schema(
    [
        ("question_id", pa.string()),
        ("sample_idx", pa.int64()),
        ("question", pa.string()),
        ("response", pa.string()),
        ("reward", pa.float64()),
        ("skill", pa.string()),
    ]
)
WRONG_KINDS = ("sign", "slip", "drop", "copy")
OPENERS = ("", "Step by step.\n", "Left to right.\n")
CLOSERS = ("The answer is \\boxed{{{n}}}.", "So the result is \\boxed{{{n}}}.", "Total: \\boxed{{{n}}}.")


@dataclass(frozen=True)
class ToySpec:
    """Sizes of the toy set (questions per skill) and its shape; the defaults are the ``toy`` recipe's."""

    train_per_skill: int = 600  # questions per skill in raw/, ``traces`` traces each
    traces: int = 8
    warmup_per_skill: int = 2400  # warm-up questions per skill (one right trace each)
    bench_per_skill: int = 100  # held-out benchmark questions per skill
    trained_bench: int = 100  # trained sum questions in benchmarks/trained-sum.jsonl (Figure 2's effect)
    min_terms: int = 5  # digits of a raw/ or benchmark question's number
    max_terms: int = 6
    warmup_min_terms: int = 3  # the warm-up's numbers are mostly shorter: the base has seen the skills,
    warmup_max_terms: int = 4  # and their longer cases only a little (``warmup_long_share`` of the
    warmup_long_share: float = 0.02  # questions), so it solves many questions only sometimes (Figure 2)
    max_digit: int = 9
    min_wrong: int = 1  # wrong teacher traces per signed question: 1..3 of 8, the majority stays right
    max_wrong: int = 3

    def __post_init__(self) -> None:
        if not (
            2 <= self.min_terms <= self.max_terms and 2 <= self.warmup_min_terms <= self.warmup_max_terms
        ):
            raise ValueError("need 2 <= min_terms <= max_terms (and the same of the warm-up's)")
        if not 0 < self.min_wrong <= self.max_wrong < self.traces / 2:
            raise ValueError("need 0 < min_wrong <= max_wrong < traces / 2 (the majority must be right)")
        sizes = ("train_per_skill", "warmup_per_skill", "bench_per_skill", "trained_bench")
        for name in sizes:
            if getattr(self, name) < 1:
                raise ValueError(f"need {name} >= 1, got {getattr(self, name)}")
        if not 0 <= self.warmup_long_share <= 1:  # NaN fails too
            raise ValueError(f"need 0 <= warmup_long_share <= 1, got {self.warmup_long_share}")


# ---------------------------------------------------------------- questions and traces (pure functions)


def draw_terms(skill: str, rng: random.Random, spec: ToySpec, short: bool = False) -> list[int]:
    """The signed digits of a number with distinct nonzero digits (each digit is one token, found once in
    the question): all added (``sum``), or added and subtracted in turn (``signed``, the alternating sum,
    drawn so that no running total is negative)."""
    n = rng.randint(
        *((spec.warmup_min_terms, spec.warmup_max_terms) if short else (spec.min_terms, spec.max_terms))
    )
    while True:
        digits = rng.sample(range(1, spec.max_digit + 1), n)
        if skill == "sum":
            return digits
        terms = [-d if i % 2 else d for i, d in enumerate(digits)]
        if all(t >= 0 for t in running(terms)):
            return terms


def running(terms: list[int]) -> list[int]:
    """The running totals: [t0, t0+t1, ...]."""
    out, total = [], 0
    for t in terms:
        total += t
        out.append(total)
    return out


def question_text(skill: str, terms: list[int], variant: int) -> str:
    """Two phrasings per skill; the phrasing is part of the question (its id)."""
    number = "".join(str(abs(t)) for t in terms)
    if skill == "sum":
        return (f"What is the sum of the digits of {number}?", f"Add up the digits of {number}.")[variant % 2]
    return (
        f"What is the alternating sum of the digits of {number}?",
        f"Compute the alternating digit sum of {number}.",
    )[variant % 2]


def scratchpad(terms: list[int], totals: list[int]) -> list[str]:
    """One line per term after the first: ``total op term = new total`` (``totals``: the value after each
    term as written, so a slip in one line carries into the next)."""
    return [
        f"{before}{'-' if t < 0 else '+'}{abs(t)}={after}"
        for t, before, after in zip(terms[1:], totals, totals[1:])
    ]


def render(lines: list[str], answer: int, rng: random.Random) -> str:
    """A QwQ-shaped trace: thinking with the scratchpad, then a closing line with the boxed answer."""
    opener = rng.choice(OPENERS)
    closer = rng.choice(CLOSERS).format(n=answer)
    return "<think>\n" + opener + "\n".join(lines) + "\n</think>\n\n" + closer


def right_trace(terms: list[int], rng: random.Random) -> str:
    totals = running(terms)
    return render(scratchpad(terms, totals), totals[-1], rng)


def wrong_trace(terms: list[int], kind: str, rng: random.Random) -> tuple[str, int]:
    """A teacher slip of ``kind`` at a random term, carried through; returns (trace, its answer).

    sign: a term read with the wrong sign; drop: a term skipped; slip: one line's result off by 1 or 10
    (later lines build on it); copy: every line right, the boxed answer off by one or its digits swapped.
    """
    k = rng.randrange(1, len(terms))
    if kind == "sign":
        terms = terms[:k] + [-terms[k]] + terms[k + 1 :]
    elif kind == "drop":
        terms = terms[:k] + terms[k + 1 :]
    elif kind not in ("slip", "copy"):
        raise ValueError(f"unknown wrong kind {kind!r}")
    totals = running(terms)
    if kind == "slip":
        delta = rng.choice([1, -1, 10, -10])
        delta = delta if totals[k] + delta >= 0 else 1
        totals = totals[:k] + [t + delta for t in totals[k:]]
    answer = totals[-1]
    if kind == "copy":
        text = str(answer)
        swap = len(text) == 2 and text[0] != text[1] and text[1] != "0"
        answer = int(text[::-1]) if swap and rng.random() < 0.5 else answer + rng.choice([1, -1])
    return render(scratchpad(terms, totals), answer, rng), answer


def teacher_group(skill: str, terms: list[int], rng: random.Random, spec: ToySpec) -> list[tuple[str, bool]]:
    """The ``spec.traces`` teacher traces of one question, with whether each is right (gold known).

    A signed question gets ``min_wrong..max_wrong`` slips whose answers all differ from the gold.
    """
    n_wrong = 0 if skill == "sum" else rng.randint(spec.min_wrong, spec.max_wrong)
    gold = sum(terms)
    out = [(right_trace(terms, rng), True) for _ in range(spec.traces - n_wrong)]
    while len(out) < spec.traces:
        text, answer = wrong_trace(terms, rng.choice(WRONG_KINDS), rng)
        if answer != gold and answer >= 0:
            out.append((text, False))
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------- the whole set


@dataclass(frozen=True)
class ToyQuestion:
    skill: str
    terms: tuple[int, ...]
    text: str

    @property
    def answer(self) -> int:
        return sum(self.terms)


def draw_questions(rng: random.Random, spec: ToySpec) -> dict[str, dict[str, list[ToyQuestion]]]:
    """Disjoint question sets per split (train, warmup, bench) and skill: no term list is in two splits."""
    sizes = {"train": spec.train_per_skill, "warmup": spec.warmup_per_skill, "bench": spec.bench_per_skill}
    seen: set[tuple[int, ...]] = set()
    out: dict[str, dict[str, list[ToyQuestion]]] = {split: {} for split in sizes}
    for skill in SKILLS:
        for split, size in sizes.items():
            questions = []
            tries = 0
            while len(questions) < size:
                tries += 1
                if tries > 1000 * (size + 1):
                    raise ValueError(f"cannot draw {size} distinct {skill} questions: widen the spec")
                short = split == "warmup" and rng.random() >= spec.warmup_long_share
                terms = tuple(draw_terms(skill, rng, spec, short))
                if terms in seen:
                    continue
                seen.add(terms)
                questions.append(
                    ToyQuestion(skill, terms, question_text(skill, list(terms), rng.randrange(2)))
                )
            out[split][skill] = questions
    return out


def _turns(question: str, response: str) -> list[dict]:
    return [{"from": "human", "value": question}, {"from": "gpt", "value": response}]


def raw_table(questions: list[ToyQuestion], rng: random.Random, spec: ToySpec) -> tuple[pa.Table, list[int]]:
    """The teacher traces of ``questions`` in OpenThoughts3's layout (rows shuffled), and wrong counts."""
    rows, wrong = [], []
    for q in questions:
        group = teacher_group(q.skill, list(q.terms), rng, spec)
        wrong.append(sum(not ok for _, ok in group))
        difficulty = len(q.terms) + (2 if q.skill == "signed" else 0)
        for text, _ in group:
            rows.append(
                {
                    "difficulty": difficulty,
                    "source": SOURCE.format(skill=q.skill),
                    "domain": "math",
                    "conversations": _turns(q.text, text),
                }
            )
    rng.shuffle(rows)
    return pa.Table.from_pylist(rows, RAW_SCHEMA), wrong


def warmup_table(questions: list[ToyQuestion], rng: random.Random) -> pa.Table:
    """One right trace per question, in the vote output's layout (reward 1): an SFT set for the base."""
    rows = [
        {
            "question_id": f"warmup-{i:05d}",
            "sample_idx": 0,
            "question": q.text,
            "response": right_trace(list(q.terms), rng),
            "reward": 1.0,
            "skill": q.skill,
        }
        for i, q in enumerate(questions)
    ]
    rng.shuffle(rows)
    return pa.Table.from_pylist(rows, WARMUP_SCHEMA)


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_toy_data(
    out: Path, seed: int = 0, spec: ToySpec | None = None, shards: int = 2, **sizes: Any
) -> dict:
    """Write raw/, warmup/, benchmarks/ and toy.json under ``out``; return toy.json's content.

    ``sizes``: ``ToySpec`` fields over ``spec`` (the ``toy`` recipe's ``data.options``)."""
    spec = replace(spec or ToySpec(), **sizes)
    out = Path(out)
    rng = random.Random(seed)
    sets = draw_questions(rng, spec)
    train = [q for skill in SKILLS for q in sets["train"][skill]]
    table, wrong = raw_table(train, rng, spec)
    size = -(-table.num_rows // shards)
    (out / "raw").mkdir(parents=True, exist_ok=True)
    for i in range(shards):
        write_table(table.slice(i * size, size), out / "raw" / shard_name(i, shards))
    warm = [q for skill in SKILLS for q in sets["warmup"][skill]]
    (out / "warmup").mkdir(parents=True, exist_ok=True)
    write_table(warmup_table(warm, rng), out / "warmup" / shard_name(0, 1))
    for skill in SKILLS:
        bench = [{"question": q.text, "answer": str(q.answer)} for q in sets["bench"][skill]]
        _write_jsonl(out / "benchmarks" / f"toy-{skill}.jsonl", bench)
    trained = sorted(sets["train"]["sum"], key=lambda q: question_id(q.text))  # `rollout --limit`'s order
    trained = [{"question": q.text, "answer": str(q.answer)} for q in trained]
    _write_jsonl(out / "benchmarks" / "trained-sum.jsonl", trained[: spec.trained_bench])
    info = {
        "seed": seed,
        "spec": asdict(spec),
        "raw_rows": table.num_rows,
        "questions": {skill: spec.train_per_skill for skill in SKILLS},
        "wrong_traces": sum(wrong),
        "warmup_traces": len(warm),
    }
    (out / "toy.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    return info


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m offcurate.data.toy", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder to write the toy set into")
    parser.add_argument("--seed", type=int, default=0, help="seed of every random choice")
    args = parser.parse_args(argv)
    print(json.dumps(write_toy_data(args.output, args.seed), indent=2))


if __name__ == "__main__":
    main()
