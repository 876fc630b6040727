"""Answer extraction rules, one named case each (pure string functions, no sympy)."""

import random
import re

import pyarrow as pa
import pytest

from offcurate.curate.answers.boxes import _answer_patterns, _boxed_scan_start, _says_final_answer
from offcurate.curate.answers.extract import TAIL_BYTES, extract_answer, extract_batch

CASES = {
    "boxed_after_think": (r"<think>work</think> so $\boxed{42}$.", "42", True),
    "nested_braces": (r"<think>w</think> \boxed{\frac{1}{2}}", r"\frac{1}{2}", True),
    "escaped_set_braces": (r"<think>w</think> \boxed{\{1,2\}}", r"\{1,2\}", True),
    "last_box_wins_over_a_revised_one": (
        r"<think>w</think> first \boxed{1}, but that counts each of the four corner squares twice; "
        r"once corrected, the count is \boxed{2}",
        "2",
        True,
    ),
    "close_boxes_are_one_answer": (r"<think>w</think> first \boxed{1}, then \boxed{2}", "1,2", True),
    "boxes_and_text_in_one_math_span": (r"<think>w</think> $\boxed{2} \text{ and } \boxed{5}$", "2,5", True),
    "adjacent_boxes": (r"<think>w</think> \boxed{1}\boxed{2}", "1,2", True),
    "repeated_box_once": (r"<think>w</think> $\boxed{3}$, i.e. $\boxed{3}$", "3", True),
    "far_boxes_without_separator": (
        r"<think>w</think> $\boxed{1}$ is what we get before we double check the count $\boxed{2}$",
        "2",
        True,
    ),
    "last_math_span_alone_when_words_join": (
        r"<think>w</think> So $x = \boxed{2}$. Then, and only then, $y = \boxed{5}$",
        "5",
        True,
    ),
    "math_spans_joined_by_and": (r"<think>w</think> $x = \boxed{2}$ and $y = \boxed{5}$", "2,5", True),
    "percent_after_math_span": (r"<think>w</think> $\boxed{28}$\%", r"28\%", True),
    "revised_box_in_thinking_ignored": (r"<think>maybe \boxed{7}? no.</think> \boxed{8}", "8", True),
    "box_only_in_thinking_is_no_answer": (r"<think>\boxed{7}</think> I give up.", None, True),
    "unclosed_think_is_truncated": (r"<think>long work \boxed{3} and then", None, False),
    "no_tags_whole_text_is_final": (r"Plain solution. \boxed{x=3}", "x=3", True),
    "stated_final_answer": ("<think>w</think> The final answer is $42$.", "42", True),
    "stated_bold_final_answer": ("<think>w</think> **Final Answer:** 7", "7", True),
    "stated_answer_with_inline_math": (r"<think>w</think> The answer is \(x = 3\).", "x = 3", True),
    "box_beats_stated": (r"<think>w</think> The final answer is 5. \boxed{6}", "6", True),
    "no_answer_at_all": ("<think>w</think> I could not solve it.", None, True),
    "unclosed_box_falls_back_to_previous": (r"<think>w</think> \boxed{5} then \boxed{", "5", True),
    "fbox": (r"<think>w</think> \fbox{9}", "9", True),
    "boxed_space_form": (r"<think>w</think> \boxed 4.", "4", True),
    "empty_box_skipped": (r"<think>w</think> \boxed{3} \boxed{ }", "3", True),
    "multiple_think_blocks_use_last_close": (
        r"<think>a</think>\boxed{1}<think>b</think>\boxed{2}",
        "2",
        True,
    ),
}


@pytest.mark.parametrize("text, answer, finished", list(CASES.values()), ids=list(CASES))
def test_extract_answer(text, answer, finished):
    assert extract_answer(text) == (answer, finished)


@pytest.mark.parametrize("text, answer, finished", list(CASES.values()), ids=list(CASES))
def test_batch_matches_scalar(text, answer, finished):
    answers, done = extract_batch(pa.array([text]))
    assert (answers[0], done[0]) == (answer, finished)


PAD = "x" * (TAIL_BYTES * 2)
LONG = {
    "long_thinking_short_final": (f"<think>{PAD}</think> \\boxed{{1}}", "1", True),
    "final_part_longer_than_tail": (f"<think>w</think> \\boxed{{2}} {PAD}", "2", True),
    "long_truncated": (f"<think>{PAD}", None, False),
    "long_truncated_box_in_thinking": (f"<think>\\boxed{{5}} {PAD}", None, False),
    "long_untagged": (f"\\boxed{{3}} {PAD}", "3", True),
    "multibyte_text_at_tail_edge": ("<think>" + "é" * TAIL_BYTES + "</think> \\boxed{4}", "4", True),
}


@pytest.mark.parametrize("text, answer, finished", list(LONG.values()), ids=list(LONG))
def test_batch_long_traces(text, answer, finished):
    """The tail shortcut must give exactly what the full-text rule gives."""
    assert extract_answer(text) == (answer, finished)
    answers, done = extract_batch(pa.array([text, None]))
    assert (answers, done) == ([answer, None], [finished, False])


def test_answer_patterns_are_math_verifys():
    """The copy of math-verify's "box" priority patterns (``extract._answer_patterns``) is exact, so the
    boxes picked are the ones math-verify reads; a math-verify upgrade that changes them fails here."""
    from math_verify.parser import LatexExtractionConfig, lazy_latex_regex

    from offcurate.curate.answers.boxes import _FIRST_CHARS

    config = LatexExtractionConfig()
    theirs = [p for p, priority in lazy_latex_regex(config) if priority == config.boxed_match_priority]
    ours = [(p.pattern.removeprefix(first), p.flags) for p, first in zip(_answer_patterns(), _FIRST_CHARS)]
    assert ours == [(p.pattern, p.flags) for p in theirs]


TOKENS = ["$", "$$", "\\[", "\\]", "\\(", "\\)", " [", "] ", "\n", "\\boxed{1}", "\\boxed{22}", "\\fbox{3}"]
TOKENS += [" and ", ", ", "x", " ", "\\$", "9", "}", "{", "%", "Final Answer is ", "fınal anſwer"]


def random_texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(TOKENS) for _ in range(rng.randint(1, 40))) for _ in range(n)]


@pytest.mark.parametrize("seed", range(3))
def test_scan_start_gives_the_matches_of_a_scan_from_zero(seed):
    """``_boxed_scan_start`` skips only positions where no match can start (generated texts)."""
    _, boxed, _ = _answer_patterns()
    for text in random_texts(2000, seed):
        if "\\boxed" not in text and "\\fbox" not in text:
            continue
        from_zero = [(m.span(), m.groupdict()) for m in boxed.finditer(text)]
        from_start = [(m.span(), m.groupdict()) for m in boxed.finditer(text, _boxed_scan_start(text))]
        assert from_start == from_zero, text


def test_final_answer_check_is_the_regex():
    """``_says_final_answer`` holds exactly where math-verify's ``(?i:final answer)`` matches."""
    texts = random_texts(3000, 7) + [
        "FINAL ANSWER",
        "fİnal answer",
        "final answeR",
        "finalanswer",
        "final  answer",
    ]
    for text in texts:
        assert _says_final_answer(text) == bool(re.search("(?i:final answer)", text)), text
