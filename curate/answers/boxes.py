"""Which boxes of a final part are its answer, picked as math-verify 0.9.0 picks them: pure string functions.

    from offcurate.curate.answers.boxes import final_boxes
    final_boxes(r"So $x = \\boxed{2}$ and $x = \\boxed{5}$.")      # "2,5"

Two readings, as in math-verify: a bare box is read with the boxes chained to it (``_box_chain``: the rule
of math-verify's ``extract_boxed_content``, mode "last"); a box in math delimiters that close last is read
with every box of those delimiters (``_all_boxes``) and of delimiters joined to them. Which reading wins is
decided by math-verify's own patterns (``_answer_patterns``, copied and checked against the installed
math-verify by tests/test_extract.py): the match that ends last. See ``extract`` for the rules in words.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

_BOX_COMMANDS = ("\\boxed", "\\fbox")
# Letters Python's re.IGNORECASE matches to ASCII letters that ``str.lower`` does not map to them.
_IGNORECASE_ALIKE = str.maketrans("\u0130\u0131\u017f\u212a", "iisk")
_CLOSERS = re.compile(r"\$|\\\]|\\\)|\]")  # what closes math delimiters
_SEPARATOR = re.compile(r"\b(and|or)\b|,|;")  # math-verify's VALID_SEPARATOR_PATTERN


def _braced(text: str, open_brace: int) -> str | None:
    """Content of the ``{...}`` group opening at ``open_brace``; ``None`` when it never closes."""
    depth = 0
    for i in range(open_brace, len(text)):
        char = text[i]
        if char == "{" and text[i - 1] != "\\":
            depth += 1
        elif char == "}" and text[i - 1] != "\\":
            depth -= 1
            if depth == 0:
                return text[open_brace + 1 : i]
    return None


def _box_at(text: str, start: int, cmd: str) -> tuple[str, int] | None:
    """``(content, index of its last character)`` of the box command at ``start``; ``None`` when the box is
    unclosed, empty or not a box. ``\\boxed 5`` short form: one token, as LaTeX reads it."""
    cmd_end = start + len(cmd)
    brace = cmd_end
    while brace < len(text) and text[brace].isspace():
        brace += 1
    if text.startswith("{", brace):
        content = _braced(text, brace)
        end = brace + 1 + len(content) if content is not None else -1
    elif brace > cmd_end and brace < len(text):
        token = text[brace:].split(maxsplit=1)[0]
        content, end = token.rstrip(".,$"), brace + len(token) - 1
    else:
        content = None
    if content is None or not content.strip():
        return None
    return content.strip(), end


def _joins(between: str, content: str, later: str) -> bool:
    """Whether a box followed by ``between`` and then a box holding ``later`` is part of one answer (the
    rule of math-verify's ``extract_boxed_content``, mode "last")."""
    if len(between) < 10:
        return True
    return content != later and len(between) < 70 and _SEPARATOR.search(between) is not None


def _boxes(text: str) -> Iterator[tuple[int, tuple[str, int] | None]]:
    """``(start, _box_at(...))`` of every box command in ``text``, right to left."""
    end = len(text)
    while (found := max((text.rfind(cmd, 0, end), cmd) for cmd in _BOX_COMMANDS))[0] >= 0:
        start, cmd = found
        yield start, _box_at(text, start, cmd)
        end = start


def _box_chain(text: str) -> str | None:
    """The last box and the boxes joined to it (``_joins``), read right to left; ``None`` without a box."""
    contents: list[str] = []
    later_start = -1
    for start, box in _boxes(text):
        if box is None:
            if contents:
                break
            continue  # unclosed or empty last box: look at the one before it
        content, close = box
        if contents and not _joins(text[close + 1 : later_start], content, contents[-1]):
            break
        if not contents or contents[-1] != content:
            contents.append(content)
        later_start = start
    return ",".join(reversed(contents)) if contents else None


def _all_boxes(text: str) -> list[str]:
    """Every box of ``text``, left to right, repeats in a row written once (math-verify's mode "all")."""
    contents: list[str] = []
    for _, box in _boxes(text):
        if box is not None and (not contents or contents[-1] != box[0]):
            contents.append(box[0])
    return contents[::-1]


def _env_pattern(prefix: str, context: str) -> str:
    """math-verify 0.9.0's ``make_latex_env_pattern`` (MIT, HuggingFace), copied so that extraction needs
    neither sympy nor math-verify at import; ``tests/test_extract.py`` checks the copy is exact."""
    percent = rf"(?P<{prefix}percent>(?:\\?%|[Pp]ercent|[Pp]ercentage|[Pp]ct))"
    display_dollar = r"(?:[^$]|\$(?!\$))"
    display_bracket = r"(?:[^\\]|\\(?!\]))"
    inline_dollar = r"(?:\\[$]|[^\n$])"
    inline_parenthesis = r"(?:[^\\\n]|\\(?!\)))"
    inline_bracket = r"[^\n\]\[]"
    contents = [display_dollar, display_bracket, inline_dollar, inline_parenthesis, inline_bracket]
    if context == "boxed":
        contents = [rf"{c}*?\\boxed{{{c}+?}}{c}*?" for c in contents]
    else:
        contents = [rf"{c}+?" for c in contents]
    dd, db, id_, ip, ib = contents
    patterns = [
        rf"(?<!\\)\$\$(?P<{prefix}latexDisplayDollar>{dd})(?<!\\)\$\$",
        rf"(?<!\\)\\\[(?P<{prefix}latexDisplayBracket>{db})(?<!\\)\\\]",
        rf"(?<!\\|\d)\$(?P<{prefix}latexInlineDollar>{id_})(?<!\\)\$",
        rf"(?<!\\)\\\((?P<{prefix}latexInlineParenthesis>{ip})(?<!\\)\\\)",
        rf"\s\[(?P<{prefix}latexInlineBracket>{ib})\]\s",
    ]
    if context == "plain":
        number = r"-?\d+(?:[.,]\d+)?"
        patterns.append(rf"(?P<{prefix}latexFraction>-?\\frac{{{number}}}{{{number}}})")
    return rf"(?:(?:{'|'.join(patterns)})\s*{percent}?)"


@functools.cache
def _answer_patterns() -> list[re.Pattern[str]]:
    """math-verify's patterns of its "box" priority, in its order: ``final answer ... is $...$``, a box
    in math delimiters (``$...$``, ``\\[...\\]``; up to six joined by "and"/"or"/commas), a bare box."""
    joiner = r"(?:\s*(?:,?and|,?or|,)\s*"
    plain = _env_pattern("first_", "plain") + "".join(
        rf"{joiner}{_env_pattern(f'next{i}_', 'plain')})?" for i in range(1, 6)
    )
    boxed = _env_pattern("first_", "boxed") + "".join(
        rf"\s*{joiner}{_env_pattern(f'next{i}_', 'boxed')})?" for i in range(1, 6)
    )
    patterns = [
        rf"(?i:final answer.{{0,100}}?)\s+is\:?\s*(?:{plain})",
        boxed,
        r"(?P<first_latexBoxed>\\boxed{.+})",
    ]
    return [re.compile(first + pattern, re.DOTALL) for first, pattern in zip(_FIRST_CHARS, patterns)]


# What each pattern's match must start with, as a lookahead: the same matches (every alternative opens
# with one of these), but the regex engine skips other positions ~4x faster (measured).
_FIRST_CHARS = ("", r"(?=\$|\\[\[(]|\s\[)", "")


def _boxed_scan_start(text: str) -> int:
    """Where the scan for a box in math delimiters may start with the same matches as from 0: a match holds
    a box, inline delimiters hold no line break, ``$$...$$`` no ``$$`` and ``\\[...\\]`` no ``\\]``, so no
    match starts before the first box's line, the last ``$$`` before it, or the last ``\\]`` before it
    (tests/test_extract.py compares with a scan from 0 on generated texts)."""
    first = min(i for i in (text.find("\\boxed"), text.find("\\fbox")) if i >= 0)
    start = max(text.rfind("\n", 0, first), 0)  # " [...] " may open on the line break itself
    if (display := text.rfind("$$", 0, first)) >= 0:
        start = min(start, max(display - 1, 0))  # -1: the pair may be the end of "$$$"
    if text.rfind("\\[", 0, first) >= 0:
        start = min(start, text.rfind("\\]", 0, first) + 1)
    return start


def final_boxes(text: str) -> str | None:
    """The final answer's boxes (see the module doc), joined with commas; ``None`` without a box.

    Which boxes, as math-verify picks them: of its matches the one that ends last wins. A bare box (or a
    box whose math delimiters close before some later ``}``) is read with the last box's chain
    (``_box_chain``); a box inside ``$...$``/``\\[...\\]`` that closes last is read with every box of those
    delimiters, and of the delimited groups joined to them by a bare "and"/"or"/comma."""
    if "\\boxed" not in text and "\\fbox" not in text:
        return None
    if not _CLOSERS.search(text, text.rfind("}") + 1):
        return _box_chain(text)  # no math delimiters close after the last "}": the bare box is read
    stated, boxed, bare = _answer_patterns()
    matches = [*boxed.finditer(text, _boxed_scan_start(text)), *bare.finditer(text)]
    if _says_final_answer(text):  # the only way ``stated`` can match
        matches = [*stated.finditer(text), *matches]
    best = max(matches, key=lambda m: (m.end(), -m.start()), default=None)
    if best is None or best.re is bare:
        return _box_chain(text)
    groups = best.groupdict()
    contents: list[str] = []
    for name, group in groups.items():
        if group and "_latex" in name:
            inner = _all_boxes(group) or [group.strip()]
            percent = groups.get(name.split("_")[0] + "_percent")
            contents.append(",".join(inner) + ("\\%" if percent else ""))
    return ",".join(contents) if contents else _box_chain(text)


def _says_final_answer(text: str) -> bool:
    """Whether ``(?i:final answer)`` occurs, without the regex engine (~5x faster)."""
    if text.isascii():
        return "final answer" in text.lower()
    return "final answer" in text.translate(_IGNORECASE_ALIKE).lower()
