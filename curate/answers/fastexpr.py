"""Small expressions read exactly as math-verify's latex2sympy converts them: radicals, pi, mixed numbers.

    read_expression("\\frac{3\\sqrt{3}}{4}")   # Mul(Mul(3, Pow(3, 1/2)), Pow(4, -1)), all unevaluated
    read_expression("12 \\frac{3}{5}")        # Rational(63, 5): a mixed number
    read_expression("x^2")                    # None: not a shape read here (math-verify parses it)

``fastpaths.read_fast`` calls this on a normalized answer that none of its number shapes matched. The
grammar is a small piece of latex2sympy's (PS.g4), read with the same conversions, node for node
(latex2sympy2_extended 1.11: ``convert_add``, ``convert_unary``, ``convert_postfix_list``,
``convert_frac``, the ``\\sqrt`` of ``convert_func``, ``parse_number``):

    sum     := term (("+" | "-") term)*           add_flat; "- t" is -t for a number, else Mul(-1, t)
    term    := ["+" | "-"] factors                 one sign at most
    factors := [number] [special] [letter]         at least one; implicit product, right to left, with
                                                   latex2sympy's mixed-number rule (2\\frac{1}{2} = 5/2)
    number  := digits ["." digits] | "." digits, optionally with a base subscript (204_5 reads 204)
    special := \\sqrt{sum} | \\frac{sum}{sum} | \\pi | \\infty
    letter  := one letter other than e, E, I (a real symbol, lower-cased), never two in a product

Anything else is ``None``, and so is any doubt: a zero denominator, a name in math-verify's complex
pattern, text that is not wholly consumed. tests/test_fastpaths.py compares it with ``parse`` on
generated forms and their near misses (``\\sqrt[3]{2}``, ``2\\sqrt{2}3``, ``\\pi^2``, ``2e``, ...).
"""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r" *(?:(?P<number>(?:\d+(?:\.\d+)?|\.\d+)(?:_\d|_\{\d+\})?)"
    r"|(?P<command>\\(?:sqrt|frac|pi|infty)(?![A-Za-z]))"
    r"|(?P<letter>[A-DF-HJ-Za-df-z])(?![A-Za-z])|(?P<symbol>[-+{}]))"
)


class _Unread(Exception):
    """The text leaves the grammar: ``read_expression`` answers None."""


class _Reader:
    def __init__(self, text: str, sympy, real: bool):
        self.sympy, self.real = sympy, real
        self.tokens = []
        position = 0
        while position < len(text):
            match = _TOKEN.match(text, position)
            if match is None or match.end() == position:
                if text[position:].strip():
                    raise _Unread
                break
            kind = match.lastgroup
            self.tokens.append((kind, match.group(kind)))
            position = match.end()
        self.at = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise _Unread
        self.at += 1
        return token

    def done(self) -> bool:
        return self.at == len(self.tokens)

    # -- the grammar -------------------------------------------------------------------------------------

    def sum(self):
        value = self.term()
        while (token := self.peek()) is not None and token[1] in "+-":
            self.take()
            right = self.term()
            if token[1] == "-":
                right = -right if right.func.is_Number else self._mul(-1, right)
            value = self._add(value, right)
        return value

    def term(self):
        token = self.peek()
        if token is not None and token[1] in ("+", "-"):
            self.take()
            value = self.factors()
            if token[1] == "+":
                return value
            return -value if value.func.is_Number else self._mul(-1, value)
        return self.factors()

    def factors(self):
        found = []
        token = self.peek()
        if token is not None and token[0] == "number":
            found.append(self._number(self.take()[1]))
        token = self.peek()
        if token is not None and token[0] == "command":
            found.append(self.special())
        token = self.peek()
        if token is not None and token[0] == "letter":
            letter = self.take()[1]
            found.append(self.sympy.Symbol(letter.lower(), real=self.real))
        if not found:
            raise _Unread
        return self._product(found)

    def special(self):
        sympy = self.sympy
        name = self.take()[1]
        if name == "\\pi":
            return sympy.pi
        if name == "\\infty":
            return sympy.oo
        if name == "\\sqrt":
            return sympy.Pow(self.group(), sympy.S.Half, evaluate=False)
        top, bottom = self.group(), self.group()  # \frac
        if top.is_Integer and bottom.is_Integer:
            if bottom == 0:
                raise _Unread  # zoo: left to math-verify
            return sympy.Rational(top, bottom)
        if bottom.is_zero is not False:
            raise _Unread
        return sympy.Mul(top, sympy.Pow(bottom, -1, evaluate=False), evaluate=False)

    def group(self):
        self.take("{")
        value = self.sum()
        self.take("}")
        return value

    # -- latex2sympy's conversions ------------------------------------------------------------------------

    def _number(self, text: str):
        from .fastpaths import _parse_number

        return _parse_number(text.split("_", 1)[0])  # ``number_subexpr``: the subscript is ignored

    def _product(self, values: list):
        """``convert_postfix_list``: the first value times the product of the rest (right to left)."""
        value = values[0]
        if len(values) == 1:
            return value
        rest = self._product(values[1:])
        if value.is_Integer and rest.is_Rational and rest.p > 0 and rest.q > 0:  # a mixed number
            sign = -1 if value < 0 else 1
            return self.sympy.Rational(value * rest.q + sign * rest.p, rest.q)
        return self._mul(value, rest)

    def _mul(self, left, right):
        """``mul_flat``: one unevaluated Mul, the factors of Mul operands spliced in."""
        args = [*(left.args if getattr(left, "is_Mul", False) else [left])]
        args += right.args if getattr(right, "is_Mul", False) else [right]
        return self.sympy.Mul(*args, evaluate=False)

    def _add(self, left, right):
        """``add_flat``: one unevaluated Add, the terms of Add operands spliced in."""
        args = [*(left.args if left.is_Add else [left])]
        args += right.args if right.is_Add else [right]
        return self.sympy.Add(*args, evaluate=False)


def read_expression(text: str, sympy, real: bool):
    """The expression latex2sympy makes of the normalized ``text`` (module doc), or ``None``. ``real``:
    whether its symbols are real (``not should_treat_as_complex(text)``)."""
    try:
        reader = _Reader(text, sympy, real)
        value = reader.sum()
        return value if reader.done() else None
    except _Unread:
        return None
