"""Exact fast paths for the commonest answer shapes: math-verify's ``parse`` and ``verify``, without the cost.

    read_fast("1,000")        # [Integer(1000), '1,000'], as parse("$1,000$") returns it, in ~0.03 ms
    read_fast("x^2 + 1")      # None: not a shape handled here; the caller parses it (~3 ms of ANTLR)
    verify_fast(read_fast("x = 63"), read_fast("n=65"))   # False, as verify decides it after ~6 ms of solve

Why it is exact. For an answer ``a`` (no ``$`` or line break: ``equivalence.as_math``), math-verify 0.9.0's
``parse("$a$")`` matches the inline math, normalizes it (``normalize_latex`` with the config of
``LatexExtractionConfig``), converts the normalized text ``n`` with ``latex2sympy(n, is_real=not
should_treat_as_complex(n))`` and returns ``[expression, n]``. This module calls the same normalization and
reads ``n`` itself only when ``n`` is one of these shapes, built with the very constructors latex2sympy's
converter applies to them (``parse_number``, ``convert_number``, ``sympy.Rational``, unary minus,
``sympy.Eq(..., evaluate=False)``, its interval rule, its ``FiniteSet``):

- a number: ``42``, ``-0042``, ``2.50``, ``+3``, ``\\frac{3}{4}``, ``-\\frac{-3}{4}`` (integers inside);
- a thousands-separated number as a whole answer: ``1,000``, ``1{,}000.5`` (``comma_number_regex``);
- ``x = <number>`` for a one-letter name other than e and i (``x = 5``; lower-cased, as latex2sympy does);
- a tuple or interval of 2-8 numbers in ``(...)`` or ``[...]`` (half-open too); a set ``\\{...\\}``; a
  bare list ``1, 2``;
- degrees ``44^\\circ`` (read as the number), an integer percent ``28\\%``, a choice ``B``, ``(B)``,
  ``\\text{(B)}`` (a symbol; not E or I);
- small expressions (``fastexpr``): radicals ``a\\sqrt{b}``, ``\\frac{a\\sqrt{b}}{c}``, multiples and
  fractions of pi ``k\\pi``, ``\\frac{k\\pi}{m}``, mixed numbers ``12 \\frac{3}{5}``, sums of such terms
  with at most one letter each (``15x - 80``, ``1+2\\sqrt{3}``), ``\\infty``, a number with a base
  subscript ``204_5`` (read as 204); and tuples, intervals, sets and lists of them.

Anything else, or any doubt (a zero denominator, a name in math-verify's complex pattern), is ``None``.

``verify_fast`` decides the one comparison of such answers that is slow in math-verify: two assignments
``x = a`` and ``y = b`` with exact (integer or rational) values, ~6 ms each (``sympy_compare_relational``
simplifies ``x - a - (y - b)``, flips it, then calls ``solve``). Read from math-verify 0.9.0's grader:
- ``sympy_str_eq`` holds when the names and the values are equal;
- otherwise ``x - a`` against ``y - b`` is never zero when the names differ (a free symbol is left); with
  one name it is the number ``b - a``, zero only if ``evalf(chop=True)`` chops it (|b - a| < ~1e-15: left
  to verify), and the flipped form ``2x - a - b`` is never zero;
- ``solve`` returns plain values, not dicts, so its comparison raises and counts as False;
- verify also compares the two normalized strings, so they are compared here too.

And one that is slow for an answer math-verify parses itself: an inequality chain ``a < x < b`` (``<`` or
``\\le``, exact numbers ``a < b``) against an interval of exact numbers, ~40 ms (``as_set`` of the chain).
``sympy_expr_eq`` turns the chain into the interval ``(a, b)`` (open where ``<``), then compares it with
the target interval: same openness and equal endpoints (for exact numbers, what its numeric and symbolic
steps conclude). The other direction (interval against chain) is not converted by verify and stays there.

tests/test_fastpaths.py compares every result of ``read_fast`` with ``parse`` on tens of thousands of
generated forms (leading zeros, ``1{,}000`` vs ``1, 000``, signs, ``.5``, ``2.50``, ...): same types,
arguments, float precision, set order and string; and ``verify`` between pairs of them, with ``verify_fast``
where it decides.
"""

from __future__ import annotations

import functools
import re

from .fastexpr import read_expression

_UNSIGNED = r"(?:\d+(?:\.\d+)?|\.\d+|\\frac\{[+-]?\d+\}\{[+-]?\d+\})"
_NUMBER = re.compile(rf"([+-]?)({_UNSIGNED})")
_WHOLE_NUMBER = re.compile(rf"[+-]?{_UNSIGNED}")
_FRACTION = re.compile(r"\\frac\{([+-]?)(\d+)\}\{([+-]?)(\d+)\}")
_EQUATION = re.compile(rf"([a-df-hj-zA-DF-HJ-Z]) *= *([+-]?{_UNSIGNED})")
_LIST = re.compile(rf"[+-]?{_UNSIGNED}(?: *, *[+-]?{_UNSIGNED}){{1,7}}")
_BRACKETED = re.compile(rf"([(\[]) *({_LIST.pattern}) *([)\]])")
_SET = re.compile(rf"\\\{{ *([+-]?{_UNSIGNED}(?: *, *[+-]?{_UNSIGNED}){{0,7}}) *\\\}}")
_INTEGER_TEXT = re.compile(r"-?(?:[1-9]\d*|0)")
_DECIMAL_TEXT = re.compile(r"-?\d*\.\d+")
_NO_SEPARATORS = str.maketrans("", "", ", ")
_DEGREES = re.compile(rf"([+-]?{_UNSIGNED})\^(?:\\circ|\{{\\circ\}})")
_PERCENT = re.compile(r"(0|[1-9]\d*) ?\\%")  # "08 \\%" reads as 8: left to parse
_CHOICE = re.compile(r"([A-DF-HJ-Z])|\(([A-DF-HJ-Z])\)|\\text\{\(([A-DF-HJ-Z])\)\}|\\text\{([A-DF-HJ-Z])\}")
_QUICK = re.compile(r"[-+0-9.,{}\\ ()\[\]=/^%a-zA-Z$!_]+")  # characters every handled shape is made of


@functools.cache
def _tools():
    """math-verify's own pieces, imported on first use (``offcurate --help`` must not import sympy)."""
    import sympy
    from latex2sympy2_extended.latex2sympy2 import comma_number_regex, normalize_latex
    from latex2sympy2_extended.logic import And
    from latex2sympy2_extended.sets import FiniteSet
    from math_verify import LatexExtractionConfig
    from math_verify.grader import should_treat_as_complex

    config = LatexExtractionConfig().normalization_config
    return (
        sympy,
        FiniteSet,
        comma_number_regex,
        should_treat_as_complex,
        (lambda text: normalize_latex(text, config=config)),
        And,
    )


def _sympy_number(text: str):
    """``sympy.Number(text)``, which sympifies the string (~1 ms: Python's tokenizer and ``eval``), built
    directly for a plain integer or decimal (same object; tests/test_fastpaths.py)."""
    sympy = _tools()[0]
    if _INTEGER_TEXT.fullmatch(text):
        return sympy.Integer(int(text))
    if _DECIMAL_TEXT.fullmatch(text):
        return sympy.Float(text)
    return sympy.Number(text)


def _convert_number(text: str):
    """latex2sympy's ``convert_number`` (a thousands-separated answer), with ``_sympy_number``."""
    if "," in text and text.startswith("0"):
        text = text.replace(",", ".")
    return _sympy_number(text.translate(_NO_SEPARATORS).lstrip("0") or "0")


def _parse_number(text: str):
    """latex2sympy's ``parse_number`` of one NUMBER token (leading zeros of an integer dropped)."""
    if text.isdigit():
        text = text.lstrip("0") or "0"
    return _sympy_number(text)


def _signed(sign: str, value):
    """latex2sympy's ``convert_unary`` on a number: ``+`` is dropped, ``-`` negates."""
    return -value if sign == "-" else value


def _number(text: str):
    """One signed number of ``_NUMBER`` as latex2sympy converts it; ``None`` for a zero denominator."""
    sign, body = _NUMBER.fullmatch(text).groups()
    if fraction := _FRACTION.fullmatch(body):
        top_sign, top, bottom_sign, bottom = fraction.groups()
        denominator = _signed(bottom_sign, _parse_number(bottom))
        if denominator == 0:
            return None
        value = _tools()[0].Rational(_signed(top_sign, _parse_number(top)), denominator)
    else:
        value = _parse_number(body)
    return _signed(sign, value)


def _numbers(text: str) -> list | None:
    values = [_number(part.strip()) for part in text.split(",")]
    return None if any(v is None for v in values) else values


def _interval(values: list, opening: str, closing: str):
    """latex2sympy's ``convert_interval`` for two bounds; ``convert_ordered_tuple`` for more (only
    parentheses make a tuple of more than two)."""
    sympy = _tools()[0]
    if len(values) > 2:
        return sympy.Tuple(*values) if (opening, closing) == ("(", ")") else None
    left, right = values
    left_open, right_open = opening == "(", closing == ")"
    try:
        both_open, both_closed = left_open and right_open, not (left_open or right_open)
        if (both_open and right <= left) or (both_closed and right < left):
            return sympy.Tuple(left, right)
    except Exception:  # noqa: BLE001 - as latex2sympy: an undecidable comparison makes an interval
        pass
    return sympy.Interval(left, right, left_open=left_open, right_open=right_open)


def _convert(text: str):
    """The expression latex2sympy makes of the normalized ``text``, for the shapes above; else ``None``."""
    sympy, finite_set, comma_number, treat_as_complex = _tools()[:4]
    if _WHOLE_NUMBER.fullmatch(text):
        return _number(text)
    if degrees := _DEGREES.fullmatch(text):  # ``convert_degrees=False``: the number as written
        return _number(degrees.group(1))
    if percent := _PERCENT.fullmatch(text):  # latex2sympy's PERCENT_NUMBER, for an integer
        hundredth = sympy.UnevaluatedExpr(sympy.Rational(1, 100))
        return sympy.Mul(_parse_number(percent.group(1)), hundredth, evaluate=False)
    if choice := _CHOICE.fullmatch(text):  # a choice letter: a symbol, lower-cased
        letter = next(group for group in choice.groups() if group)
        return None if treat_as_complex(text) else sympy.Symbol(letter.lower(), real=True)
    if comma_number.match(text):  # checked on the whole answer, as latex2sympy does
        return _convert_number(text)
    if equation := _EQUATION.fullmatch(text):
        name, value = equation.groups()
        value = _number(value)
        if value is None or treat_as_complex(text):
            return None
        return sympy.Eq(sympy.Symbol(name.lower(), real=True), value, evaluate=False)
    if _LIST.fullmatch(text):
        values = _numbers(text)
        return None if values is None else finite_set(*values)
    if bracketed := _BRACKETED.fullmatch(text):
        opening, inside, closing = bracketed.groups()
        values = _numbers(inside)
        return None if values is None else _interval(values, opening, closing)
    if braced := _SET.fullmatch(text):
        values = _numbers(braced.group(1))
        return None if values is None else finite_set(*values)
    if treat_as_complex(text):
        return None  # its symbols would not be real: left to parse
    if (container := _container(text)) is not None:
        return container
    return read_expression(text, sympy, real=True)


def _elements(inside: str) -> list | None:
    """The values of comma-separated expressions (radicals, pi, ...: ``fastexpr``), or ``None``."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inside):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(inside[start:i])
            start = i + 1
    parts.append(inside[start:])
    if not 1 <= len(parts) <= 8 or any(c in inside for c in "()[]"):
        return None
    values = [read_expression(part, _tools()[0], real=True) for part in parts]
    return None if any(v is None for v in values) else values


def _container(text: str):
    """A tuple, interval, set or bare list whose elements are expressions (not only numbers)."""
    finite_set = _tools()[1]
    if text.startswith("\\{") and text.endswith("\\}"):
        values = _elements(text[2:-2])
        return None if values is None else finite_set(*values)
    if text[:1] in "([" and text[-1:] in ")]":
        values = _elements(text[1:-1])
        return None if values is None or len(values) < 2 else _interval(values, text[0], text[-1])
    if "," in text:
        values = _elements(text)
        return None if values is None or len(values) < 2 else finite_set(*values)
    return None


def read_fast(answer: str) -> list | None:
    """``[expression, normalized text]`` exactly as ``math_verify.parse(f"${answer}$")`` returns it, for
    the shapes in the module doc; ``None`` for anything else (the caller parses it)."""
    if not answer or len(answer) > 200 or not _QUICK.fullmatch(answer):
        return None
    normalized = _tools()[4](answer)
    if not normalized or normalized != normalized.strip():
        return None
    try:
        expression = _convert(normalized)
    except Exception:  # noqa: BLE001 - latex2sympy fails on it too (``-050,180``): parse decides what follows
        return None
    return None if expression is None else [expression, normalized]


def _assignment(parsed: list) -> tuple[str, object] | None:
    """``(name, value)`` of a parse ``[Eq(Symbol, Integer or Rational), text]``; else ``None``."""
    sympy = _tools()[0]
    if len(parsed) != 2 or not isinstance(parsed[1], str) or type(parsed[0]) is not sympy.Equality:
        return None
    lhs, rhs = parsed[0].args
    if type(lhs) is not sympy.Symbol or lhs.is_real is not True or not isinstance(rhs, sympy.Rational):
        return None
    return lhs.name, rhs


def _chain(parsed: list) -> tuple | None:
    """``(start, end, left_open, right_open)`` of a parse ``[a < x < b, text]`` (``<`` or ``\\le`` each side,
    ``a < b`` exact numbers, one real symbol): the interval ``as_set`` makes of it; else ``None``."""
    sympy = _tools()[0]
    if len(parsed) != 2 or not isinstance(parsed[1], str) or type(parsed[0]) is not _tools()[5]:
        return None
    relations = getattr(parsed[0], "_unsorted_args", ())
    kinds = (sympy.StrictLessThan, sympy.LessThan)
    if len(relations) != 2 or any(type(r) not in kinds for r in relations):
        return None
    (start, x), (y, end) = relations[0].args, relations[1].args
    numbers = all(isinstance(v, sympy.Rational) for v in (start, end))
    if type(x) is not sympy.Symbol or x != y or x.is_real is not True or not numbers or not start < end:
        return None
    return start, end, type(relations[0]) is sympy.StrictLessThan, type(relations[1]) is sympy.StrictLessThan


def _interval_of(parsed: list) -> tuple | None:
    sympy = _tools()[0]
    if len(parsed) != 2 or not isinstance(parsed[1], str) or type(parsed[0]) is not sympy.Interval:
        return None
    interval = parsed[0]
    if not all(isinstance(v, sympy.Rational) for v in (interval.start, interval.end)):
        return None
    return interval.start, interval.end, bool(interval.left_open), bool(interval.right_open)


def verify_fast(gold: list, target: list) -> bool | None:
    """``math_verify.verify(gold, target)`` for the pairs in the module doc; ``None`` for any other pair,
    or values closer than chopping could tell apart."""
    strings = (
        bool(gold[1].strip()) and gold[1].strip() == target[1].strip()
        if len(gold) == len(target) == 2
        else False
    )
    chain, interval = _chain(gold), _interval_of(target)
    if chain is not None and interval is not None:
        return chain == interval or strings
    left, right = _assignment(gold), _assignment(target)
    if left is None or right is None:
        return None
    (name, value), (other_name, other_value) = left, right
    if name != other_name:
        return strings
    if value == other_value:
        return True
    if abs(value - other_value) < _tools()[0].Rational(1, 2**40):
        return None
    return strings
