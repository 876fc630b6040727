"""Final-answer extraction from a teacher trace: pure string functions, no sympy.

Rules (OpenThoughts3 / QwQ traces are ``<think> ... </think>`` followed by a short solution):
- the answer lives in the *final part*, after the last ``</think>``; a ``\\boxed`` inside the thinking
  that is later revised never counts;
- a trace that opens ``<think>`` and never closes it is truncated: unfinished, no answer;
- a trace with no thinking tags at all is final part from start to end;
- the answer is the content of the last ``\\boxed{...}`` (nested braces handled); when the final part has
  no box, an explicitly stated final answer ("The final answer is $42$") counts.

``extract_batch`` applies the same rules to an Arrow column but only decodes each trace's tail: traces are
~50 KB and the final part is usually a few KB, so the full text is read in Python only when needed.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TAIL_BYTES = 8192
_BOX_COMMANDS = ("\\boxed", "\\fbox")

# "The final answer is $42$", "**Final Answer:** 42", "the answer is: \(x=3\)". Only the last match counts.
_STATED = re.compile(
    r"(?:final\s+answer|the\s+answer)\s*(?:\*\*)?\s*(?:is|:|=)\s*(?:\*\*)?\s*(?::\s*)?(?P<rest>[^\n]+)",
    re.IGNORECASE,
)
_MATH_WRAPPERS = (("$$", "$$"), ("$", "$"), ("\\[", "\\]"), ("\\(", "\\)"))


def final_part(text: str) -> str | None:
    """The text after the last ``</think>``; the whole text without tags; ``None`` when truncated."""
    close = text.rfind(THINK_CLOSE)
    if close >= 0:
        return text[close + len(THINK_CLOSE) :]
    return None if THINK_OPEN in text else text


def is_finished(text: str) -> bool:
    """False for a trace that opened ``<think>`` and never closed it (cut at the length limit)."""
    return final_part(text) is not None


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


def last_boxed(text: str) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox``); ``\\boxed 5`` short form too."""
    end = len(text)
    while True:
        start, cmd = max((text.rfind(cmd, 0, end), cmd) for cmd in _BOX_COMMANDS)
        if start < 0:
            return None
        cmd_end = start + len(cmd)
        if text.startswith("{", cmd_end):
            content = _braced(text, cmd_end)
        elif text.startswith(" ", cmd_end):  # \boxed 5 -> "5" (one token, as LaTeX reads it)
            content = text[cmd_end + 1 :].split(maxsplit=1)[0].rstrip(".,$") if text[cmd_end + 1 :] else None
        else:
            content = None
        if content is not None and content.strip():
            return content.strip()
        end = start  # unclosed or empty box: look at the one before it


def _strip_math(answer: str) -> str:
    answer = answer.strip().rstrip(".").strip()
    for left, right in _MATH_WRAPPERS:
        if answer.startswith(left):
            close = answer.find(right, len(left))
            if close > 0:
                return answer[len(left) : close].strip()
    return answer


def stated_answer(text: str) -> str | None:
    """The last explicitly stated final answer in a box-free final part, stripped of ``$``/``**``."""
    matches = list(_STATED.finditer(text))
    if not matches:
        return None
    rest = matches[-1].group("rest").replace("**", "").strip()
    answer = _strip_math(rest)
    return answer or None


def extract_answer(text: str) -> tuple[str | None, bool]:
    """``(answer as written or None, finished)`` for one trace."""
    final = final_part(text)
    if final is None:
        return None, False
    answer = last_boxed(final)
    if answer is None:
        answer = stated_answer(final)
    return answer, True


_CONTROL_WORD_GAP = re.compile(r"(\\[A-Za-z]+)\s+(?=[A-Za-z])")


def answer_key(answer: str) -> str:
    """Identity key: the answer without whitespace, as TeX reads math (``x = 3`` is ``x=3``), except the
    space that ends a control word before a letter (``\\cdot x`` is not ``\\cdotx``). Answers with one
    key always vote together, parsable or not, and an answer is parsed from its key (``Verifier.parse``),
    so whichever written form is met first cannot change a label."""
    marked = _CONTROL_WORD_GAP.sub("\\1\0", answer)
    return "".join(marked.split()).replace("\0", " ")


def extract_batch(responses: pa.Array | pa.ChunkedArray) -> tuple[list[str | None], list[bool]]:
    """``extract_answer`` over a column, decoding only the last ``TAIL_BYTES`` of each trace when the
    closing ``</think>`` sits there (the common case); other rows fall back to the full text."""
    if isinstance(responses, pa.ChunkedArray):
        responses = responses.combine_chunks()
    as_binary = responses.cast(pa.large_binary() if pa.types.is_large_string(responses.type) else pa.binary())
    tails = pc.binary_slice(as_binary, -TAIL_BYTES).to_pylist()
    lengths = pc.binary_length(as_binary).to_pylist()
    answers: list[str | None] = []
    finished: list[bool] = []
    for i, tail in enumerate(tails):
        if tail is None:
            answers.append(None)
            finished.append(False)
            continue
        text = tail.decode("utf-8", "ignore")  # a cut multi-byte char at the edge cannot hide a tag
        close = text.rfind(THINK_CLOSE)
        if close < 0 and lengths[i] > TAIL_BYTES:
            text = responses[i].as_py()  # final part longer than the tail, truncated, or no tags
            close = -2
        if close >= 0:
            final = text[close + len(THINK_CLOSE) :]
            answer = last_boxed(final)
            answers.append(answer if answer is not None else stated_answer(final))
            finished.append(True)
        else:
            answer, done = extract_answer(text)
            answers.append(answer)
            finished.append(done)
    return answers, finished
