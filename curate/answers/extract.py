"""Final-answer extraction from a teacher trace: pure string functions, no sympy (which boxes are the
answer is decided in ``boxes.py``, with math-verify's own patterns).

Rules (OpenThoughts3 / QwQ traces are ``<think> ... </think>`` followed by a short solution):
- the answer lives in the *final part*, after the last ``</think>``; a ``\\boxed`` inside the thinking
  that is later revised never counts;
- a trace that opens ``<think>`` and never closes it is truncated: unfinished, no answer;
- a trace with no thinking tags at all is final part from start to end;
- the answer is the final answer's boxes, read as math-verify 0.9.0 reads several boxes
  (``extract_boxed_content``): the last ``\\boxed{...}`` (nested braces handled), and, going left, each box
  that ends fewer than 10 characters before the next one starts, or fewer than 70 with "and", "or", a comma
  or a semicolon in between and a content different from the next one. The first box of that chain is where
  the final answer begins; the contents are joined with commas (repeats in a row written once), so
  ``\\boxed{2} \\text{ and } \\boxed{5}`` is ``2,5``, which math-verify reads as the set {2, 5}. A box
  farther back is an earlier result that the last one revises, and does not count. When the last box sits
  in math delimiters that close last (``$...$``, ``\\[...\\]``), math-verify reads those delimiters instead:
  every box inside them, and in delimiters joined to them by a bare "and"/"or"/comma (``boxes.final_boxes``);
- when the final part has no box, an explicitly stated final answer ("The final answer is $42$") counts.

``extract_batch`` applies the same rules to an Arrow column but only decodes each trace's tail: traces are
~50 KB and the final part is usually a few KB, so the full text is read in Python only when needed.
"""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from .boxes import final_boxes

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
TAIL_BYTES = 8192

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
    answer = final_boxes(final)
    if answer is None:
        answer = stated_answer(final)
    return answer, True


# Spaces around "=" that no step of math-verify's reading sees (``x = 3`` is ``x=3``): before "=" after a
# digit, ")" or a one-letter name, and after "=" before a number. Not after "}" or a word, which its
# normalization may rewrite (``\\text{percent}`` and ``pct`` become ``%``, ``and`` a comma, so the gap
# would survive in its reading), nor after "\\" (``\\ `` is a space command); only plain spaces (a line
# break ends ``$...$``). tests/test_labeling.py checks that generated forms parse as their keys do.
_EQUALS_GAP = re.compile(r"(?:(?<=[0-9)])|(?<![A-Za-z\\][A-Za-z])(?<=[A-Za-z])) +(?==)|(?<==) +(?=-?\d)")


def answer_key(answer: str) -> str:
    """Identity key: the answer without leading or trailing whitespace (math-verify strips a box's content
    too) and without the spaces around "=" that math-verify cannot see (``_EQUALS_GAP``). Other whitespace
    is kept: ``12, 345`` is the set {12, 345} to math-verify and ``12,345`` the number 12345, ``28 percent``
    is 28% and ``28percent`` is not, ``5 sq m`` loses its unit and ``5 sq  m`` does not. Answers with one key
    always vote together, parsable or not; answers whose keys differ vote together when math-verify says
    so. An answer is parsed from its key (``Verifier.parse``), so whichever written form is met first
    cannot change a label."""
    return _EQUALS_GAP.sub("", answer.strip())


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
            answer = final_boxes(final)
            answers.append(answer if answer is not None else stated_answer(final))
            finished.append(True)
        else:
            answer, done = extract_answer(text)
            answers.append(answer)
            finished.append(done)
    return answers, finished
