"""The fast paths (``curate/answers/fastpaths.py``) against math-verify 0.9.0 itself: a differential test.

Every generated form (``answer_forms.py``: numbers, thousands separators right and wrong, fractions, ``x = n``
for every letter, tuples, intervals, sets, lists and near misses) is read twice, by ``read_fast`` and by
``math_verify.parse`` as ``Verifier`` calls it; wherever the fast path answers, the two results must be the
same objects: same types all the way down, same arguments, same float precision, same unsorted set order,
same string. Pairs of them are then verified both ways with the two results (and with ``verify_fast``
where it decides) and must get the same outcomes.

``OFFCURATE_FASTPATH_FORMS`` sets how many forms (CI: 6000 and 450 pairs, ~25 s; the figures in
BENCHMARKS.md come from a run with 60000 and 900 pairs).
"""

from __future__ import annotations

import logging
import os
import random
from pathlib import Path

import pytest
from answer_forms import generated_forms

from offcurate.curate.answers.equivalence import as_math
from offcurate.curate.answers.extract import answer_key
from offcurate.curate.answers.fastpaths import read_fast, verify_fast

logging.getLogger("math_verify").setLevel(logging.CRITICAL)
FORMS = int(os.environ.get("OFFCURATE_FASTPATH_FORMS", "6000"))


def same(a, b) -> bool:
    """Identical parse results: what ``==`` misses too (types, float precision, unsorted set order)."""
    from sympy import Basic, Float, srepr

    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, str):
        return a == b
    if isinstance(a, Float):
        return a._prec == b._prec and str(a) == str(b)
    unsorted = [list(getattr(x, "_unsorted_args", [])) for x in (a, b)]  # latex2sympy's FiniteSet order
    if not same(*unsorted):
        return False
    if isinstance(a, Basic):
        return srepr(a) == srepr(b) and same(list(a.args), list(b.args))
    return a == b


def parse_as_vote_does(key: str) -> list:
    from math_verify import parse

    return parse(as_math(key), parsing_timeout=None)


@pytest.fixture(scope="module")
def read():
    """``{key: (fast result, parse result)}`` for every generated form the fast path reads."""
    out = {}
    for form in generated_forms(FORMS, seed=0):
        key = answer_key(form)
        if key not in out and (fast := read_fast(key)) is not None:
            out[key] = (fast, parse_as_vote_does(key))
    return out


def test_fast_path_reads_what_parse_reads(read):
    differ = {key: (fast, real) for key, (fast, real) in read.items() if not same(fast, real)}
    print(f"\n{FORMS} forms, {len(read)} read by a fast path, {len(differ)} differ")
    assert differ == {}


CASES = {  # key: the expression math-verify makes of it (srepr), and its string
    "leading_zeros": ("0042", "Integer(42)", "0042"),
    "negative_zero": ("-0", "Integer(0)", "-0"),
    "plus_sign": ("+3", "Integer(3)", "+3"),
    "thousands": ("1,000", "Integer(1000)", "1,000"),
    "thousands_braced": ("1{,}000", "Integer(1000)", "1,000"),
    "thousands_decimal": ("1,000.5", "Float('1000.5', precision=53)", "1,000.5"),
    "comma_space_is_a_set": ("1, 000", "FiniteSet(Integer(0), Integer(1))", "1, 000"),
    "short_group_is_a_set": ("12,34", "FiniteSet(Integer(12), Integer(34))", "12,34"),
    "leading_zero_comma_is_decimal": ("0,500", "Float('0.5', precision=53)", "0,500"),
    "point_five_is_a_half": (".5", "Rational(1, 2)", "\\frac{1}{2}"),
    "zero_point_five_is_a_half": ("0.5", "Rational(1, 2)", "\\frac{1}{2}"),
    "trailing_zero": ("2.50", "Float('2.5', precision=53)", "2.50"),
    "negative_point_five": ("-.5", "Float('-0.5', precision=53)", "-.5"),
    "slash_fraction": ("-3/4", "Rational(-3, 4)", "\\frac{-3}{4}"),
    "dfrac_reduces": ("\\dfrac{6}{8}", "Rational(3, 4)", "\\frac{6}{8}"),
    "fraction_to_integer": ("-\\frac{4}{2}", "Integer(-2)", "-\\frac{4}{2}"),
    "assignment": ("x=5", "Equality(Symbol('x', real=True), Integer(5))", "x=5"),
    "assignment_upper": ("X=5", "Equality(Symbol('x', real=True), Integer(5))", "X=5"),
    "open_interval": ("(1, 2)", "Interval(Integer(1), Integer(2), true, true)", "(1, 2)"),
    "reversed_is_tuple": ("(2, 1)", "Tuple(Integer(2), Integer(1))", "(2, 1)"),
    "closed_interval": ("[1, 2]", "Interval(Integer(1), Integer(2), false, false)", "[1, 2]"),
    "triple": ("(1,2,3)", "Tuple(Integer(1), Integer(2), Integer(3))", "(1,2,3)"),
    "left_right": ("\\left(1, 2\\right)", "Interval(Integer(1), Integer(2), true, true)", "(1, 2)"),
    "set": ("\\{3,1\\}", "FiniteSet(Integer(1), Integer(3))", "\\{3,1\\}"),
    "bare_list": ("3, 1", "FiniteSet(Integer(1), Integer(3))", "3, 1"),
    "degrees": ("44^\\circ", "Integer(44)", "44^\\circ"),
    "degrees_braced": ("44^{\\circ}", "Integer(44)", "44^{\\circ}"),
    "percent": ("28\\%", "Mul(Integer(28), UnevaluatedExpr(Rational(1, 100)))", "28\\%"),
    "choice": ("B", "Symbol('b', real=True)", "B"),
    "choice_in_text": ("\\text{(B)}", "Symbol('b', real=True)", "\\text{(B)}"),
    # radicals, pi, mixed numbers (``fastexpr``): unevaluated trees, node for node
    "radical": ("2\\sqrt{2}", "Mul(Integer(2), Pow(Integer(2), Rational(1, 2)))", "2\\sqrt{2}"),
    "radical_unbraced": ("11\\sqrt2", "Mul(Integer(11), Pow(Integer(2), Rational(1, 2)))", "11\\sqrt{2}"),
    "radical_negated": ("-\\sqrt{3}", "Mul(Integer(-1), Pow(Integer(3), Rational(1, 2)))", "-\\sqrt{3}"),
    "radical_not_simplified": ("\\sqrt{8}", "Pow(Integer(8), Rational(1, 2))", "\\sqrt{8}"),
    "radical_over_integer": (
        "\\frac{3\\sqrt{3}}{4}",
        "Mul(Mul(Integer(3), Pow(Integer(3), Rational(1, 2))), Pow(Integer(4), Integer(-1)))",
        "\\frac{3\\sqrt{3}}{4}",
    ),
    "pi_multiple": ("12\\pi", "Mul(Integer(12), pi)", "12\\pi"),
    "pi": ("\\pi", "pi", "\\pi"),
    "pi_fraction_negated": (
        "-\\frac{\\pi}{6}",
        "Mul(Integer(-1), Pow(Integer(6), Integer(-1)), pi)",
        "-\\frac{\\pi}{6}",
    ),
    "pi_multiple_over": (
        "\\frac{3\\pi}{4}",
        "Mul(Pow(Integer(4), Integer(-1)), Mul(Integer(3), pi))",
        "\\frac{3\\pi}{4}",
    ),
    "over_pi": ("\\frac{20000}{\\pi}", "Mul(Integer(20000), Pow(pi, Integer(-1)))", "\\frac{20000}{\\pi}"),
    "mixed_number": ("1\\frac{1}{4}", "Rational(5, 4)", "1\\frac{1}{4}"),
    "mixed_number_spaced": ("12 \\frac{3}{5}", "Rational(63, 5)", "12 \\frac{3}{5}"),
    "mixed_number_negated": ("-1\\frac{1}{4}", "Rational(-5, 4)", "-1\\frac{1}{4}"),
    "mixed_whole_fraction": ("2\\frac{4}{2}", "Integer(4)", "2\\frac{4}{2}"),
    "mixed_zero_is_a_product": ("2\\frac{0}{3}", "Mul(Integer(0), Integer(2))", "2\\frac{0}{3}"),
    "sum_with_radical": (
        "1+2\\sqrt{3}",
        "Add(Integer(1), Mul(Integer(2), Pow(Integer(3), Rational(1, 2))))",
        "1+2\\sqrt{3}",
    ),
    "linear": ("15x - 80", "Add(Mul(Integer(15), Symbol('x', real=True)), Integer(-80))", "15x - 80"),
    "i_next_to_a_digit_is_a_real_symbol": (
        "6 - 5i",
        "Add(Mul(Integer(-1), Integer(5), Symbol('i', real=True)), Integer(6))",
        "6 - 5i",
    ),
    "half_open_to_infinity": ("(-\\infty, 0]", "Interval(-oo, Integer(0), true, false)", "(-\\infty, 0]"),
    "half_open": ("(3,4]", "Interval(Integer(3), Integer(4), true, false)", "(3,4]"),
    "half_open_reversed_is_empty": ("(4,3]", "EmptySet", "(4,3]"),
    "interval_of_radicals": (
        "(-\\sqrt{3}, \\sqrt{3})",
        "Interval(Mul(Integer(-1), Pow(Integer(3), Rational(1, 2))), Pow(Integer(3), Rational(1, 2)), "
        "true, true)",
        "(-\\sqrt{3}, \\sqrt{3})",
    ),
    "base_subscript_ignored": ("204_5", "Integer(204)", "204_5"),
    "dollars_and_thin_space": ("\\$32,\\!348", "Integer(32348)", "32,348"),
}


@pytest.mark.parametrize("key, expression, text", list(CASES.values()), ids=list(CASES))
def test_awkward_forms_read_exactly(key, expression, text):
    from sympy import srepr

    fast = read_fast(key)
    assert fast is not None and srepr(fast[0]) == expression and fast[1] == text
    assert same(fast, parse_as_vote_does(key))


LEFT_TO_PARSE = {
    "negative_percent": "-5\\%",
    "decimal_percent": "0.28\\%",
    "percent_leading_zero_space": "08 \\%",  # math-verify reads the integer 8
    "choice_e": "E",
    "assignment_of_thousands": "x = 1,000",
    "zero_denominator": "\\frac{3}{0}",
    "euler_e": "e = 5",
    "imaginary_i": "i = 5",
    "trailing_point": "3.",
    "semicolons": "1;2",
    "two_assignments": "x=1, y=2",
    "cube_root": "\\sqrt[3]{2}",
    "digit_after_radical": "2\\sqrt{2}3",
    "power_of_pi": "\\pi^2",
    "euler_e_times": "2e",
    "power": "x^2",
    "two_letters": "2xy",
    "complex_i_alone": "3 + i",  # math-verify's complex pattern: its symbols are not real
    "plus_minus": "1 \\pm \\sqrt{5}",
    "pi_over_zero": "\\frac{\\pi}{0}",
    "two_signs": "--2",
    "one_element_in_parentheses": "(\\sqrt{2})",
    "union": "(0,9) \\cup (9,36)",
}


@pytest.mark.parametrize("key", list(LEFT_TO_PARSE.values()), ids=list(LEFT_TO_PARSE))
def test_other_shapes_are_left_to_parse(key):
    assert read_fast(key) is None


def test_verify_outcomes_are_the_same(read):
    """Pairs of read answers, both directions: verify on the fast results = verify on parse's results =
    ``verify_fast`` where it decides. Assignments are over-sampled (the one verify shortcut)."""
    from math_verify import verify

    rng = random.Random(0)
    keys = sorted(read)
    assignments = [k for k in keys if "=" in k]
    numbers = [k for k in keys if "=" not in k and "," not in k and "(" not in k and "[" not in k]
    scale = 2 if FORMS > 6000 else 1  # 450 pairs in CI (~12 s), 900 in a longer run
    pairs = [tuple(rng.sample(keys, 2)) for _ in range(200 * scale)]
    pairs += [tuple(rng.sample(assignments, 2)) for _ in range(150 * scale)]
    pairs += [(a, a.replace("=", " = ")) for a in assignments[: 50 * scale]]  # same value, other string
    pairs += [(rng.choice(assignments), rng.choice(numbers)) for _ in range(50 * scale)]
    parsed: dict[str, list] = {}

    def real(key: str) -> list:
        return parsed.setdefault(key, parse_as_vote_does(key))

    decided = 0
    for a, b in pairs:
        for gold, target in ((a, b), (b, a)):
            expected = verify(real(gold), real(target), timeout_seconds=None)
            gold_fast, target_fast = read_fast(gold) or real(gold), read_fast(target) or real(target)
            assert verify(gold_fast, target_fast, timeout_seconds=None) == expected, (gold, target)
            known = verify_fast(gold_fast, target_fast)
            decided += known is not None
            assert known in (None, expected), (gold, target)
    assert decided > len(pairs) // 4  # the shortcut is exercised, not only declined


@pytest.mark.parametrize(
    "gold, target, expected",
    [
        ("x = 63", "x=63", True),
        ("x = 63", "x = 65", False),
        ("x = 63", "n = 63", False),
        ("x = \\frac{1}{2}", "x = 0.5", None),  # a float value is left to verify
        ("x = \\frac{1}{2}", "x = \\frac{2}{4}", True),
        ("x = 3", "3", None),
    ],
)
def test_verify_fast_on_hand_written_pairs(gold, target, expected):
    from math_verify import verify

    gold_read, target_read = read_fast(gold), read_fast(target)
    assert verify_fast(gold_read, target_read) is expected
    if expected is not None:
        real = verify(parse_as_vote_does(gold), parse_as_vote_does(target), timeout_seconds=None)
        assert real is expected


def _chain_and_interval(rng: random.Random) -> tuple[str, str]:
    a, b = sorted(rng.sample(range(-20, 20), 2))
    if rng.random() < 0.2:
        a, b = b, a  # empty chain
    if rng.random() < 0.2:
        b = f"\\frac{{{2 * b + 1}}}{{2}}"
    low, high = rng.choice(["<", "\\le", "<"]), rng.choice(["<", "\\le", "<"])
    name = rng.choice("xxxy")
    chain = f"{a}{low}{name}{high}{b}" if rng.random() < 0.5 else f"{a} {low} {name} {high} {b}"
    left, right = rng.choice("(([["), rng.choice("))]]")
    c, d = (a, b) if rng.random() < 0.7 else (a, rng.randint(-20, 20))
    return chain, f"{left}{c}, {d}{right}"


def test_inequality_chain_against_interval():
    """``a < x < b`` against an interval: ``verify_fast`` decides as verify does (it is ~40 ms there)."""
    from math_verify import verify

    rng = random.Random(1)
    decided = 0
    for _ in range(120):
        chain, interval = _chain_and_interval(rng)
        gold, target = parse_as_vote_does(chain), read_fast(interval) or parse_as_vote_does(interval)
        expected = verify(gold, parse_as_vote_does(interval), timeout_seconds=None)
        known = verify_fast(gold, target)
        decided += known is not None
        assert known in (None, expected), (chain, interval)
    assert decided > 40  # the rest: empty chains, tuples


MATH500 = Path(__file__).resolve().parents[2] / "shared" / "data" / "benchmarks" / "math500.jsonl"


@pytest.mark.skipif(not MATH500.exists(), reason=f"{MATH500} not found (../shared absent)")
def test_math500_golds_are_mostly_read_and_read_exactly():
    """Real answers: the distinct MATH-500 golds (as ``vote`` keys them) that a fast path reads are read as
    ``parse`` reads them, and they are at least 85% of them (69% before radicals, pi and mixed numbers)."""
    import json

    golds = sorted({answer_key(json.loads(line)["answer"]) for line in MATH500.read_text().splitlines()})
    read = {gold: fast for gold in golds if (fast := read_fast(gold)) is not None}
    assert {gold: fast for gold, fast in read.items() if not same(fast, parse_as_vote_does(gold))} == {}
    print(f"\nMATH-500: {len(read)} of {len(golds)} distinct golds read by a fast path")
    assert len(read) >= 0.85 * len(golds)
