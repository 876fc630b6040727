"""Generated written forms of the answer shapes ``fastparse`` handles, and of their near misses, for the
differential test against math-verify's ``parse`` (tests/test_fastparse.py).

    from answer_forms import generated_forms
    forms = generated_forms(20_000, seed=0)     # distinct strings, deterministic in the seed

Awkward cases on purpose: leading zeros, signs (``+3``, ``-0``), ``.5``, ``2.50``, ``3.``, thousands
separators right and wrong (``1,000``, ``1{,}000``, ``1, 000``, ``12,34``, ``0,500``), spaces, zero and
signed denominators, every one-letter name in ``x = n``, reversed and equal interval bounds, half-open
brackets, degrees, percents and choice letters written several ways, and shapes that must be left to the
parser (``-5\\%``, ``2\\frac{1}{2}``, ``x = 1,000``).
"""

from __future__ import annotations

import random
import string


def _digits(rng: random.Random) -> str:
    size = rng.choice([1, 1, 1, 2, 2, 3, 3, 4, 5, 6, 7, 9, 12, 20, 30])
    text = str(rng.randrange(10 ** (size - 1), 10**size)) if size > 1 else str(rng.randrange(10))
    if rng.random() < 0.1:
        text = "0" * rng.randint(1, 3) + text
    return text


def _sign(rng: random.Random) -> str:
    return rng.choice(["", "", "", "-", "-", "+"])


def _decimal(rng: random.Random) -> str:
    whole, frac = _digits(rng), _digits(rng)
    if rng.random() < 0.2:
        frac += "0" * rng.randint(1, 2)
    return rng.choice([f"{whole}.{frac}", f"{whole}.{frac}", f".{frac}", f"0.{frac}", f"{whole}.", "0.5"])


def _thousands(rng: random.Random) -> str:
    groups = [str(rng.randint(1, 999))] + [f"{rng.randrange(1000):03d}" for _ in range(rng.randint(1, 3))]
    sep = rng.choice([",", ",", ",", "{,}", ", ", " ,", " ", "\\,", ",\\!"])
    text = sep.join(groups)
    if rng.random() < 0.15:  # a wrong grouping: 1,23 or 12,3456
        text = text[:-1] if rng.random() < 0.5 else text + str(rng.randrange(10))
    if rng.random() < 0.15:
        text = "0" + text
    if rng.random() < 0.15:
        text += "." + _digits(rng)
    return _sign(rng) + text


def _fraction(rng: random.Random) -> str:
    top = _digits(rng) if rng.random() < 0.3 else str(rng.randint(0, 99))
    bottom = rng.choice([str(rng.randint(1, 99)), "0", "1", _digits(rng), "08"])
    cmd = rng.choice(["\\frac", "\\frac", "\\dfrac", "\\tfrac"])
    inner = f"{_sign(rng)}{top}", f"{_sign(rng) if rng.random() < 0.2 else ''}{bottom}"
    return _sign(rng) + rng.choice(
        [
            f"{cmd}{{{inner[0]}}}{{{inner[1]}}}",
            f"{cmd}{{{inner[0]}}}{{{inner[1]}}}",
            f"{inner[0]}/{inner[1]}",
            f"{cmd}{top[-1]}{bottom[-1]}",
            f"{cmd}{{{top}.5}}{{{bottom}}}",
            f"{top[-1]}{cmd}{{1}}{{{bottom}}}",
        ]
    )


def number(rng: random.Random) -> str:
    """One number as a trace may write it."""
    kind = rng.random()
    if kind < 0.35:
        return _sign(rng) + _digits(rng)
    if kind < 0.55:
        return _sign(rng) + _decimal(rng)
    if kind < 0.8:
        return _fraction(rng)
    return _thousands(rng)


def element(rng: random.Random) -> str:
    """A number inside a tuple, set or list: mostly without thousands separators (a comma there splits)."""
    return (
        number(rng)
        if rng.random() < 0.15
        else rng.choice([_sign(rng) + _digits(rng), _decimal(rng), _fraction(rng)])
    )


def _equation(rng: random.Random) -> str:
    name = rng.choice(string.ascii_letters + "xxxxxyyn")
    if rng.random() < 0.05:
        name = rng.choice(["xy", "f(x)", "\\alpha", "x_1"])
    eq = rng.choice(["=", "=", " = ", "= ", " =", "==", "  =  "])
    return f"{name}{eq}{number(rng)}"


def _bracketed(rng: random.Random) -> str:
    values = [element(rng) for _ in range(rng.choice([2, 2, 2, 3, 4, 9]))]
    if rng.random() < 0.3:
        values[1] = values[0]  # equal bounds
    sep = rng.choice([",", ", ", " , ", ";"])
    opening, closing = rng.choice([("(", ")"), ("(", ")"), ("[", "]"), ("(", "]"), ("[", ")")])
    if rng.random() < 0.1:
        opening, closing = "\\left" + opening, "\\right" + closing
    pad = rng.choice(["", "", " "])
    return f"{opening}{pad}{sep.join(values)}{pad}{closing}"


def _set(rng: random.Random) -> str:
    values = [element(rng) for _ in range(rng.randint(0, 4))]
    return "\\{" + rng.choice([",", ", "]).join(values) + "\\}"


def _listed(rng: random.Random) -> str:
    return rng.choice([",", ", ", " ,", ";"]).join(element(rng) for _ in range(rng.randint(2, 5)))


def _degrees(rng: random.Random) -> str:
    n = rng.choice([element(rng), str(rng.randint(0, 360))])
    return n + rng.choice(
        ["^\\circ", "^{\\circ}", "^\\circ", " ^\\circ", "^ \\circ", "^{ \\circ }", "\\circ", "°"]
    )


def _percent(rng: random.Random) -> str:
    n = rng.choice([str(rng.randint(0, 100)), _digits(rng), element(rng)])
    return n + rng.choice(["\\%", "\\%", " \\%", "%", "  \\%", " percent", "\\ \\%"])


def _choice(rng: random.Random) -> str:
    letter = rng.choice(string.ascii_uppercase + "ABCDE" * 4 + "abcde")
    return rng.choice(
        [
            letter,
            f"({letter})",
            f"\\text{{({letter})}}",
            f"\\text{{{letter}}}",
            f"\\textbf{{({letter})}}",
            f"\\mathrm{{({letter})}}",
            f"( {letter} )",
            f"\\text{{ ({letter}) }}",
            f"{letter}{letter}",
            f"\\text{{({letter}) }}",
        ]
    )


def _other(rng: random.Random) -> str:
    """Shapes the fast paths must leave to the parser (or read exactly)."""
    n = number(rng)
    return rng.choice(
        [
            f"{n}\\%",
            f"{n}%",
            f"{n}^\\circ",
            f"\\text{{{n}}}",
            f"{n} \\text{{ cm}}",
            f"{n}\\sqrt{{2}}",
            f"{n}\\pi",
            f"x = {n}, y = {number(rng)}",
            f"{n} + x",
            f"{n}e5",
            f"\\boxed{{{n}}}",
            f"-{n}",
            f"{n}!",
        ]
    )


def _small(rng: random.Random) -> str:
    """A coefficient: mostly a plain integer, sometimes any number form (zeros, decimals, separators)."""
    return str(rng.randint(0, 30)) if rng.random() < 0.8 else number(rng).lstrip("+-")


def _radicand(rng: random.Random) -> str:
    return rng.choice([str(rng.randint(0, 200)), str(rng.randint(2, 13)), "0", "1", "08", _decimal(rng)])


def _radical(rng: random.Random) -> str:
    """``a\\sqrt{b}``, ``\\frac{a\\sqrt{b}}{c}`` and their signs, spaces and near misses."""
    a, b, c = _small(rng), _radicand(rng), rng.choice([str(rng.randint(1, 40)), "0", _small(rng)])
    root = rng.choice([f"\\sqrt{{{b}}}", f"\\sqrt{{{b}}}", f"\\sqrt{b[-1]}", f"\\sqrt {{{b}}}"])
    space = rng.choice(["", "", " ", "\\,", "\\cdot "])
    return _sign(rng) + rng.choice(
        [
            f"{a}{space}{root}",
            f"{a}{space}{root}",
            root,
            f"\\frac{{{a}{space}{root}}}{{{c}}}",
            f"\\dfrac{{{root}}}{{{c}}}",
            f"\\frac{{{root}}}{{{c}}}",
            f"\\frac{{{c}}}{{{root}}}",
            f"{a}+{c}{root}",
            f"{a}{root} - {c}",
            f"{a}{root}+{c}\\sqrt{{{_radicand(rng)}}}",
            f"\\frac{{{a}+{root}}}{{{c}}}",
            f"\\sqrt[3]{{{b}}}",  # near misses from here
            f"{a}{root}{c}",
            f"{root}^2",
            f"{root}{root}",
            f"\\sqrt{{{a}x}}",
            f"{a}{root}x",
        ]
    )


def _pi(rng: random.Random) -> str:
    """``k\\pi``, ``\\frac{k\\pi}{m}``, ``\\frac{\\pi}{m}`` and their near misses."""
    k, m = _small(rng), rng.choice([str(rng.randint(1, 12)), "0", _small(rng)])
    space = rng.choice(["", "", " "])
    return _sign(rng) + rng.choice(
        [
            f"{k}{space}\\pi",
            f"{k}{space}\\pi",
            "\\pi",
            f"\\frac{{{k}{space}\\pi}}{{{m}}}",
            f"\\frac{{\\pi}}{{{m}}}",
            f"\\tfrac{{\\pi}}{{{m}}}",
            f"\\frac{{{k}}}{{\\pi}}",
            f"\\frac{{1}}{{{m}}}\\pi",
            f"{k}+{m}\\pi",
            f"{k}\\pi - {m}",
            f"\\pi/{m}",  # near misses from here
            "\\pi^2",
            f"{k}\\pi r",
            f"\\pi{k}",
            f"{k}\\pi i",
            f"{k}\\pi e",
            f"{k}\\pi\\sqrt{{{m}}}",
        ]
    )


def _mixed(rng: random.Random) -> str:
    """Mixed numbers ``1\\frac{1}{4}``, ``12 \\frac{3}{5}``: read as 5/4 and 63/5 by latex2sympy."""
    a, p, q = str(rng.randint(0, 150)), rng.randint(0, 12), rng.randint(1, 12)
    top = rng.choice([str(p), str(p), str(q * 2), f"-{p}", "0", _small(rng)])
    bottom = rng.choice([str(q), str(q), f"-{q}", "0", "1"])
    cmd = rng.choice(["\\frac", "\\frac", "\\dfrac", "\\tfrac"])
    space = rng.choice(["", "", " ", "  "])
    return _sign(rng) + rng.choice(
        [
            f"{a}{space}{cmd}{{{top}}}{{{bottom}}}",
            f"{a}{space}{cmd}{{{top}}}{{{bottom}}}",
            f"{a}{space}{cmd}{p % 10}{q % 10}",
            f"{_decimal(rng)}{space}{cmd}{{{top}}}{{{bottom}}}",
            f"{a}{space}{cmd}{{{top}}}{{{bottom}}}\\pi",
            f"{a}{space}{cmd}{{{top}}}{{{bottom}}}x",
            f"{cmd}{{{top}}}{{{bottom}}}{a}",
        ]
    )


def _polynomial(rng: random.Random) -> str:
    """Linear expressions in one letter, complex-looking ``a+bi``, and near misses (powers, two letters)."""
    a, b = _small(rng), _small(rng)
    x, y = rng.choice(string.ascii_letters), rng.choice("xyzknt")
    op = rng.choice(["+", "-", " + ", " - "])
    return _sign(rng) + rng.choice(
        [
            f"{a}{x}",
            f"{a}{x}{op}{b}",
            f"{a}{x}{op}{b}",
            f"{x}{op}{b}",
            f"{a}{op}{b}{x}",
            f"{x}",
            f"{a}{op}{b}i",
            f"{a}{op}i",
            f"{a}i",
            f"{a}{x}{op}{b}{y}",
            f"{a}{x}{y}",  # near misses from here
            f"{a}{x}^2{op}{b}",
            f"{a} {x} {y}",
            f"{x}_{a}",
            f"{a}{x}{op}{op}{b}",
            f"{a}e{op}{b}",
        ]
    )


def _written(rng: random.Random) -> str:
    """Dollars, ``\\!`` separators, base subscripts, intervals to infinity, containers of radicals."""
    n, m = _digits(rng), str(rng.randint(0, 99))
    groups = [str(rng.randint(1, 999))] + [f"{rng.randrange(1000):03d}" for _ in range(rng.randint(1, 3))]
    radical = rng.choice(
        [f"\\sqrt{{{rng.randint(2, 20)}}}", f"{m}\\pi", f"\\frac{{\\pi}}{{{m}}}", _small(rng)]
    )
    opening, closing = rng.choice([("(", ")"), ("[", "]"), ("(", "]"), ("[", ")"), ("\\left(", "\\right)")])
    return rng.choice(
        [
            f"{n}_{rng.randint(2, 9)}",
            f"{n}_{{{rng.randint(2, 16)}}}",
            f"{n}_{{x}}",
            f"\\${n}",
            f"\\${_decimal(rng)}",
            f"\\$ {n}",
            ",\\!".join(groups),
            ",\\! ".join(groups),
            f"{n}!",
            f"{opening}-\\infty, {m}{closing}",
            f"{opening}{m},\\infty{closing}",
            f"{opening}-\\infty,\\infty{closing}",
            f"{opening}\\infty, {m}{closing}",
            f"{opening}{m}, {_small(rng)}{closing}",
            f"{opening}{_sign(rng)}{radical}, {radical}{closing}",
            f"{opening}{m}, {radical}, {_small(rng)}{closing}",
            f"\\{{{radical}, {m}\\}}",
            f"{radical}, {_sign(rng)}{radical}",
            f"({m}x, {radical})",
            f"{opening}{radical}{closing}",
        ]
    )


GENERATORS = (
    *(number, number, number, _equation, _equation, _bracketed, _bracketed, _set, _listed, _other),
    *(_degrees, _percent, _choice, _radical, _radical, _pi, _mixed, _polynomial, _written),
)


def generated_forms(count: int, seed: int = 0) -> list[str]:
    """``count`` distinct answer strings (deterministic in ``seed``)."""
    rng = random.Random(seed)
    forms: dict[str, None] = {}
    while len(forms) < count:
        forms.setdefault(rng.choice(GENERATORS)(rng), None)
    return list(forms)
