"""Corpus of (gold, trace) pairs for the differential test against plain math-verify (test_differential.py).

    from answer_shapes import all_cases
    for case in all_cases():
        case.name, case.gold, case.trace      # trace: a whole response (thinking + final part)

Four sources: hand-written cases for each class of issue 11 (several boxes, directions, whitespace in keys,
words and units), generated variations (box layouts x joiners x answers, number spacing, units), the real
Qwen2.5-Math samples in ``../shared/data/real_samples`` and the reference solutions of the benchmarks in
``../shared/data/benchmarks`` (each wrapped as the final part of a trace). Names are stable, so the test
can list its exceptions by name.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
REAL = SHARED / "real_samples" / "qwen25-math-7b-instruct_math_8samples.jsonl"
BENCHMARKS = SHARED / "benchmarks"
BENCHMARK_NAMES = ("math500", "aime24", "amc23", "minerva_math")


@dataclass(frozen=True)
class Case:
    name: str
    gold: str
    trace: str


def trace(final: str, thinking: str = "Let me work through this.") -> str:
    return f"<think>\n{thinking}\n</think>\n\n{final}"


# name: (gold, final part) -- or (gold, final part, thinking)
HAND_WRITTEN: dict[str, tuple[str, ...]] = {
    # 1. several boxes are one answer
    "boxes_text_and": (r"\{2, 5\}", r"The roots are $\boxed{2} \text{ and } \boxed{5}$."),
    "boxes_text_and_vs_one_box": ("2, 5", r"So $x = \boxed{2}$ and $x = \boxed{5}$."),
    "boxes_last_only_is_wrong": ("5", r"The roots are $\boxed{2} \text{ and } \boxed{5}$."),
    "boxes_pairs_comma": (r"(1, 2), (2, 1)", r"Both pairs work: \boxed{(1, 2)}, \boxed{(2, 1)}"),
    "boxes_x_y": ("3, 4", r"Hence $x = \boxed{3},\ y = \boxed{4}$."),
    "boxes_adjacent": ("1, 2", r"\boxed{1}\boxed{2}"),
    "boxes_display_lines": ("7, 9", "Part (a):\n\\[\n\\boxed{7}\n\\]\nPart (b):\n\\[\n\\boxed{9}\n\\]"),
    "boxes_far_apart_revised": (
        "9",
        r"At first I get $\boxed{7}$. But that misreads the question: the count must exclude the two "
        r"endpoints we added twice, so the final count is $\boxed{9}$.",
    ),
    "boxes_far_apart_revised_wrong_gold": (
        "7",
        r"At first I get $\boxed{7}$. But that misreads the question: the count must exclude the two "
        r"endpoints we added twice, so the final count is $\boxed{9}$.",
    ),
    "boxes_repeated_same": ("12", r"So $\boxed{12}$, that is, $\boxed{12}$."),
    "boxes_thinking_box_ignored": ("4", r"The answer is $\boxed{4}$.", r"Maybe \boxed{3}? No, recount."),
    "boxes_thinking_box_not_counted": ("3", r"The answer is $\boxed{4}$.", r"Maybe \boxed{3}? No, recount."),
    "boxes_or": (r"\{-1, 1\}", r"$x=\boxed{-1}$ or $x=\boxed{1}$"),
    "boxes_semicolon": ("(a) 2; (b) 8", r"(a) $\boxed{2}$; (b) $\boxed{8}$"),
    # 2. directions
    "direction_equation_gold_rhs_prediction": ("5 = 2a + b", r"\boxed{2a + b}"),
    "direction_equation_gold_zero_prediction": ("2p + q = 0", r"\boxed{0}"),
    "direction_tuple_gold_set_prediction": ("(4, 2)", r"\boxed{\{2, 4\}}"),
    "direction_value_gold_equation_prediction": ("3", r"\boxed{x = 3}"),
    "direction_interval_gold": ("(-2, 2)", r"\boxed{-2 < x < 2}"),
    "direction_fraction_decimal": (r"\frac{1}{2}", r"\boxed{0.5}"),
    # 3. whitespace in keys
    "key_two_numbers_vs_one": ("12345", r"\boxed{12, 345}"),
    "key_one_number": ("12345", r"\boxed{12,345}"),
    "key_set_gold_two_numbers": (r"\{12, 345\}", r"\boxed{12, 345}"),
    "key_set_gold_one_number": (r"\{12, 345\}", r"\boxed{12,345}"),
    "key_spaced_thousands": ("1000000", r"\boxed{1 000 000}"),
    "key_i_t_exponent": (r"e^{i t}", r"\boxed{e^{i t}}"),
    "key_it_exponent": (r"e^{i t}", r"\boxed{e^{it}}"),
    "key_control_word_gap": (r"2 \cdot x", r"\boxed{2\cdot x}"),
    "key_sin_x": (r"\sin x", r"\boxed{\sin  x}"),
    # 4. words and units in the box
    "units_percent_word": (r"28\%", r"\boxed{28 percent}"),
    "units_percent_sign": (r"28\%", r"\boxed{28\%}"),
    "units_percent_vs_plain": ("28", r"\boxed{28\%}"),
    "units_yuan_text": ("0.06", r"\boxed{0.06 \text{ yuan}}"),
    "units_cm_text": ("5", r"\boxed{5\text{ cm}}"),
    "units_cm_word": ("5", r"\boxed{5 cm}"),
    "units_cm_squared": ("25", r"\boxed{25\text{ cm}^2}"),
    "units_degrees": ("30", r"\boxed{30^\circ}"),
    "units_dollars": ("18.90", r"\boxed{\$18.90}"),
    "words_yes": (r"\text{Yes}", r"\boxed{\text{Yes}}"),
    "words_yes_no": (r"\text{Yes}", r"\boxed{\text{No}}"),
    "words_choice": ("B", r"\boxed{\text{(B)}}"),
    # ordinary shapes
    "plain_integer": ("42", r"So the answer is $\boxed{42}$."),
    "plain_wrong": ("42", r"So the answer is $\boxed{41}$."),
    "plain_fraction": (r"\frac{3}{4}", r"\[\boxed{\dfrac34}\]"),
    "plain_sqrt": (r"2\sqrt{2}", r"\boxed{\sqrt{8}}"),
    "plain_matrix": (
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
        r"\boxed{\begin{pmatrix} 1 \\ 2 \end{pmatrix}}",
    ),
    "plain_interval": (r"[1, \infty)", r"\boxed{[1,\infty)}"),
    "plain_nested_braces": (r"\frac{\sqrt{3}}{2}", r"\boxed{\frac{\sqrt{3}}{2}}"),
    # no box in the final part
    "nobox_stated": ("42", "The final answer is $42$."),
    "nobox_last_number": ("42", "After all that work the count is 42, which we check twice."),
}


def hand_written() -> list[Case]:
    cases = []
    for name, (gold, final, *thinking) in HAND_WRITTEN.items():
        cases.append(Case(f"hand:{name}", gold, trace(final, *thinking)))
    return cases


_LAYOUTS = {  # how one box sits in the final part
    "bare": "{box}",
    "sentence": "Therefore the answer is {box}.",
    "inline": "Therefore the answer is ${box}$.",
    "display": "Therefore\n\\[\n{box}\n\\]",
    "final_answer": "**Final Answer**\n\n{box}",
    "equation": "We get $x = {box}$.",
}
_JOINERS = {  # between two boxes of one answer, or of an earlier and a later answer
    "and_text": r" \text{ and } ",
    "and": " and ",
    "comma": ", ",
    "comma_space_cmd": r",\ ",
    "none": "",
    "or": " or ",
    "semicolon": "; ",
    "long_no_separator": " which we now double check against the original equation carefully ",
    "long_with_and": " and, checking the second equation again with care, ",
    "very_long_with_and": " and, checking the second equation again with care as the problem asks us to, ",
}
_ANSWERS = ["3", "-2", r"\frac{1}{2}", r"\sqrt{2}", "(1, 2)", "x = 4", r"\{1, 3\}", "0.25", r"\pi", "10"]
_NUMBER_FORMS = ["12345", "12,345", "12, 345", "12 345", "12{,}345", "12\\,345", "1,2,3,45", "12.345"]
_UNIT_FORMS = [
    "5 cm",
    r"5\text{ cm}",
    r"5 \text{cm}",
    r"5\,\text{cm}",
    r"5 \mathrm{~cm}",
    "5 meters",
    "5 percent",
    r"5\%",
    r"5 \text{ percent}",
    r"5 \text{ yuan}",
    r"5\text{ dollars}",
    "5 sq m",
    "5 sq  m",
    r"5^\circ",
    r"5^{\circ} \text{C}",
    r"\$5",
]


def generated(seed: int = 11) -> list[Case]:
    """Box layouts x joiners x answer pairs, number and unit forms against several golds."""
    rng = random.Random(seed)
    cases = []
    for layout, shape in _LAYOUTS.items():
        for answer in _ANSWERS:
            final = shape.format(box=f"\\boxed{{{answer}}}")
            cases.append(Case(f"gen:one:{layout}:{answer}", answer, trace(final)))
        for joiner, between in _JOINERS.items():
            a, b = rng.sample(_ANSWERS, 2)
            box_a, box_b = f"\\boxed{{{a}}}", f"\\boxed{{{b}}}"
            final = shape.format(box=box_a) + between + shape.format(box=box_b)
            for gold_name, gold in (("both", f"{a}, {b}"), ("last", b), ("first", a)):
                cases.append(Case(f"gen:two:{layout}:{joiner}:{gold_name}", gold, trace(final)))
            inline = shape.format(box=box_a + between + box_b)
            cases.append(Case(f"gen:two_in_one:{layout}:{joiner}", f"{a}, {b}", trace(inline)))
    for written in _NUMBER_FORMS:
        for gold in ("12345", r"\{12, 345\}", "12.345", "12"):
            cases.append(Case(f"gen:number:{written}:{gold}", gold, trace(f"So $\\boxed{{{written}}}$.")))
    for written in _UNIT_FORMS:
        for gold in ("5", r"5\%", "0.05"):
            cases.append(
                Case(f"gen:unit:{written}:{gold}", gold, trace(f"The answer is \\boxed{{{written}}}."))
            )
    return cases


def real_samples() -> list[Case]:
    """100 MATH problems x 8 Qwen2.5-Math-7B-Instruct responses against the problem's gold."""
    if not REAL.exists():
        return []
    cases = []
    for line in REAL.read_text().splitlines():
        problem = json.loads(line)
        for k, response in enumerate(problem["response"]):
            cases.append(Case(f"qwen:{problem['idx']}:{k}", problem["gt"], trace(response)))
    return cases


def benchmark_solutions() -> list[Case]:
    """Each benchmark's reference solution (amc23: its stored answer, boxed) against its gold, as read
    by ``eval``'s loader."""
    from offcurate.eval.benchmarks import load_benchmark

    cases = []
    for name in BENCHMARK_NAMES:
        path = BENCHMARKS / f"{name}.jsonl"
        if not path.exists():
            continue
        bench = load_benchmark(path)
        source = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for (qid, _, gold), raw in zip(bench.problems.iter_rows(), source):
            final = raw.get("solution") or f"The answer is $\\boxed{{{raw['answer']}}}$."
            cases.append(Case(f"{name}:{qid}", gold, trace(final, "I recall the reference solution.")))
    return cases


def all_cases() -> list[Case]:
    return hand_written() + generated() + real_samples() + benchmark_solutions()
