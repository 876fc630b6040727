"""Majority vote on hand-written groups: exact statuses, majority answers, clusters and rewards.

These run the real math-verify equivalence (``Verifier``), so ``\\frac{1}{2}``, ``0.5`` and ``\\dfrac12``
must vote together for the expected labels to come out.
"""

import pytest

from offcurate.curate.answers.cluster import label_group
from offcurate.curate.answers.equivalence import ScoreAgainstGold, Verifier, label_question
from offcurate.curate.answers.extract import answer_key

GROUPS = {
    "equivalent_fractions_outvote_plain_majority_string": (
        [r"\frac{1}{2}", "0.5", r"\dfrac12", "1/2", "3", "3", "3"],
        "ok",
        r"\frac{1}{2}",
        [0, 0, 0, 0, 1, 1, 1],
        [1, 1, 1, 1, 0, 0, 0],
    ),
    "equation_and_value_vote_together": (["x=3", "3", "4"], "ok", "x=3", [0, 0, 1], [1, 1, 0]),
    "most_written_form_is_the_majority_answer": (
        ["0.5", r"\frac12", r"\frac12", "2"],
        "ok",
        r"\frac12",
        [0, 0, 0, 1],
        [1, 1, 1, 0],
    ),
    "exact_tie": (["4", "5", "5", "4"], "tie", None, [0, 1, 1, 0], [None] * 4),
    "tie_at_top_with_smaller_third": (["1", "2", "1", "2", "3"], "tie", None, [0, 1, 0, 1, 2], [None] * 5),
    "plurality_not_absolute_majority": (
        ["1", "1", "1", "2", "2", "3", "3"],
        "ok",
        "1",
        [0, 0, 0, 1, 1, 2, 2],
        [1, 1, 1, 0, 0, 0, 0],
    ),
    "no_answer": ([None, None, None], "no_answer", None, [None] * 3, [None] * 3),
    "missing_answer_scores_zero": (["7", None, "7"], "ok", "7", [0, None, 0], [1, 0, 1]),
    "asymmetric_verify_interval": (
        ["-2<x<2", "(-2,2)", "(-2,2)", "5"],
        "ok",
        "(-2,2)",
        [0, 0, 0, 1],
        [1, 1, 1, 0],
    ),
    "whitespace_only_difference_is_identity": (
        [r"\text{ Alice }", r"\text{Alice}", "Bob"],
        "ok",
        r"\text{ Alice }",
        [0, 0, 1],
        [1, 1, 0],
    ),
    "radicals": ([r"2\sqrt{2}", r"\sqrt{8}", "3"], "ok", r"2\sqrt{2}", [0, 0, 1], [1, 1, 0]),
    "sets_in_any_order": ([r"\{1,2\}", r"\{2,1\}", r"\{1,3\}"], "ok", r"\{1,2\}", [0, 0, 1], [1, 1, 0]),
    "degrees": ([r"30^\circ", "30", "60"], "ok", r"30^\circ", [0, 0, 1], [1, 1, 0]),
    "text_choice": ([r"\text{(B)}", "B", "C"], "ok", r"\text{(B)}", [0, 0, 1], [1, 1, 0]),
    "unanimous_is_all_positive": (["12"] * 4, "ok", "12", [0] * 4, [1] * 4),
}


@pytest.fixture(scope="module")
def verifier():
    return Verifier(timeout=2.0)


@pytest.mark.parametrize(
    "answers, status, majority, clusters, rewards", list(GROUPS.values()), ids=list(GROUPS)
)
@pytest.mark.parametrize("all_pairs", [False, True], ids=["fast", "all_pairs"])
def test_label_group(verifier, answers, status, majority, clusters, rewards, all_pairs):
    label = label_group(answers, verifier.equivalent, all_pairs=all_pairs)
    assert label.status == status
    assert label.majority_answer == majority
    assert label.clusters == clusters
    assert label.rewards == [None if r is None else float(r) for r in rewards]


def test_components_are_transitive():
    """a~b and b~c put a and c in one class even though a !~ c directly."""
    links = {("a", "b"), ("b", "c")}
    label = label_group(["a", "c", "b", "d"], lambda x, y: (x, y) in links or (y, x) in links)
    assert label.clusters == [0, 0, 0, 1]
    assert label.majority_votes == 3


def test_fast_path_makes_each_comparison_of_the_all_pairs_scan_once():
    calls = []

    def equivalent(a, b):
        calls.append((a, b))
        return a == b

    label_group(["1", "2", "1", "3", "2", "1"], equivalent)
    # in the order the all-pairs scan first makes them (it makes 12, with repeats); both orders of a
    # pair occur, since verify is not symmetric
    assert calls == [("1", "2"), ("1", "3"), ("2", "1"), ("2", "3"), ("3", "2"), ("3", "1")]


SLOW = r"\sin(x)^{400}+\cos(x)^{400}"  # reads at once; simplify against a number runs past any limit
SAME_LENGTH = r"\frac{1}{23456789012345678}"  # as long as SLOW: the tie-break of the blame decides
TOWER = "9^{9^{9^{9}}}"  # cannot be evaluated on its own in time: pathological wherever it is


# Questions run one after the other on one cached verifier, and what each must give (the naive path's
# labels, computed on the question alone).
SLOW_HISTORY = [
    ([SLOW, "5", "5"], [None, "5", "5"]),  # times out against a number: dropped, one timeout paid
    (["B", SLOW, "B", "C"], ["B", SLOW, "B", "C"]),  # no comparison times out: kept as an answer
    ([SLOW, "5", "7"], [None, "5", "7"]),  # a comparison known to time out: dropped, nothing paid
    # as long as SLOW: blamed only where it is compared first, so SLOW is the one dropped here...
    ([SLOW, "5", SAME_LENGTH], [None, "5", SAME_LENGTH]),
    # ...but here the fraction is compared first, the comparison times out and the fraction is blamed
    ([SAME_LENGTH, SLOW, "5"], [None, None, "5"]),
]


def test_a_slow_comparison_is_not_a_slow_answer():
    verifier = Verifier(timeout=0.5)
    paid = []
    for answers, expect in SLOW_HISTORY:
        naive = label_question(answers, Verifier(timeout=0.5, cached=False), all_pairs=True)
        before = verifier.timeouts
        assert label_question(answers, verifier).answers == naive.answers == expect
        paid.append(verifier.timeouts - before)
    assert paid == [1, 0, 0, 0, 1]  # a comparison known to time out is never paid for twice


@pytest.mark.parametrize(
    "answers, expect_dropped, expect_clusters",
    [
        pytest.param(["10^{10^{10}}", "5", "5"], 1, [None, 0, 0], id="power_tower_times_out"),
        pytest.param([TOWER, "B", "B"], 1, [None, 0, 0], id="power_tower_dropped_beside_letters"),
        pytest.param(["\\frac{" * 30 + "1" + "}{2}" * 30, "5", "5"], 1, [None, 0, 0], id="nested_fractions"),
        pytest.param(["x" * 2000, "5", "5"], 1, [None, 0, 0], id="garbage_longer_than_limit"),
    ],
)
def test_pathological_answer_gets_no_answer(answers, expect_dropped, expect_clusters):
    result = label_question(answers, Verifier(timeout=0.5))
    assert result.pathological == expect_dropped
    assert result.label.clusters == expect_clusters
    assert result.answers[0] is None
    assert result.label.rewards == [0.0, 1.0, 1.0]


def test_an_unreadable_answer_is_paid_for_once_per_run():
    """The tower fails on its own, whatever it is compared with: one timeout for the run, where the naive
    path (nothing remembered) pays one in every question that holds it."""
    questions = [[TOWER, "5", "5"], ["B", TOWER, "C", "B"], [r"\frac{1}{2}", "0.5", TOWER]]
    cached, naive = Verifier(timeout=0.5), Verifier(timeout=0.5, cached=False)
    for answers in questions:
        fast = label_question(answers, cached)
        slow = label_question(answers, naive, all_pairs=True)
        assert fast.answers == slow.answers == [None if a == TOWER else a for a in answers]
        assert fast.label == slow.label
    assert (cached.timeouts, naive.timeouts) == (1, 3)


@pytest.mark.parametrize(
    "answer, key",
    [
        pytest.param(" x = 3\n", "x=3", id="ends_stripped_spaces_around_equals_dropped"),
        pytest.param("y_1  =  -2", "y_1=-2", id="space_runs_around_equals_dropped"),
        pytest.param("x =\n3", "x=\n3", id="line_break_kept"),
        pytest.param("\\text{percent} = 3", "\\text{percent} =3", id="space_after_a_word_kept"),
        pytest.param("\\le = 3", "\\le =3", id="space_after_a_control_word_kept"),
        pytest.param("x = \\pi", "x= \\pi", id="space_before_a_non_number_kept"),
        pytest.param("12, 345", "12, 345", id="two_numbers_stay_two"),
        pytest.param("12,345", "12,345", id="one_number_stays_one"),
        pytest.param("2 3", "2 3", id="digits_with_a_space"),
        pytest.param("\\sin  x", "\\sin  x", id="run_of_spaces_kept"),
    ],
)
def test_answer_key(answer, key):
    assert answer_key(answer) == key


@pytest.mark.parametrize(
    "spaced, joined, same",
    [
        pytest.param("12, 345", "12,345", False, id="set_of_two_vs_thousands"),
        pytest.param("2 3", "23", False, id="two_plus_three_vs_twenty_three"),
        pytest.param("x = \\pi", "x=\\pi", True, id="space_before_pi_is_a_key_not_a_value"),
        pytest.param("28 percent", "28percent", False, id="percent_word_needs_its_space"),
    ],
)
def test_whitespace_is_math_verifys_to_read(spaced, joined, same):
    """Forms that differ only in whitespace are separate keys; they vote together exactly when
    math-verify reads them as equal (``12, 345`` is {12, 345}, ``2 3`` is 5)."""
    verifier = Verifier(timeout=2.0)
    assert answer_key(spaced) != answer_key(joined)
    assert verifier.equivalent(spaced, joined) is same


def test_a_written_form_met_earlier_does_not_change_a_label():
    """An answer is parsed from its key, so the label of a question does not depend on which form an
    earlier question cached: ``2 3`` (read 2 + 3) is not ``23``."""
    cached = Verifier(timeout=2.0)
    label_question(["23", "23"], cached)
    answers = ["2 3", "5", "5", "23"]
    fast = label_question(answers, cached)
    naive = label_question(answers, Verifier(timeout=2.0, cached=False), all_pairs=True)
    assert fast.label == naive.label
    assert fast.label.clusters == [0, 0, 0, 1]  # math-verify reads 2 3 as 5
    assert fast.label.majority_answer == "5"


@pytest.mark.parametrize(
    "gold, prediction, correct, same_class",
    [
        pytest.param("5 = 2a + b", "2a + b", 0.0, True, id="equation_gold_rhs_prediction"),
        pytest.param("2a + b", "5 = 2a + b", 1.0, True, id="rhs_gold_equation_prediction"),
        pytest.param("2p + q = 0", "0", 0.0, True, id="equation_gold_zero_prediction"),
        pytest.param("(4, 2)", "\\{2, 4\\}", 0.0, True, id="tuple_gold_set_prediction"),
        pytest.param("3", "x = 3", 1.0, True, id="value_gold_equation_prediction"),
        pytest.param("\\frac{1}{2}", "0.5", 1.0, True, id="fraction_gold_decimal"),
        pytest.param("4", "5", 0.0, False, id="different_numbers"),
    ],
)
def test_gold_is_one_direction_vote_is_symmetric(gold, prediction, correct, same_class):
    """``eval``/``stats`` score ``verify(gold, prediction)`` only; ``vote`` (no gold) joins either way."""
    verifier = Verifier(timeout=2.0)
    assert ScoreAgainstGold().run([gold, prediction], verifier) == [correct]
    clusters = label_question([gold, prediction], verifier).label.clusters
    assert (clusters[0] == clusters[1]) is same_class


LEFT = ["x", "y_1", "a_{n}", "f(x)", "2", "\\frac{1}{2}", "i", "m", "\\le", "percent", "\\!", "\\", "<", "]"]
LEFT += ["pct", "and", "\\text{percent}", "\\text{and}", "x_{percent}", "\\infty", "inf"]
RIGHT = ["3", "-2", "0.5", ".5", "12, 345", "12,345", "3 cm", "m", "3 percent", "3\\%", "\\frac{1}{2}", "-x"]
RIGHT += ["\\pi", "\\sqrt{2}", "\\text{ cm}", "i", "\\{1, 2\\}", "(1, 2)", "[1, 2]", "1 000", "\\infty"]
RIGHT += ["{,}", "\\ 3", "3 sq m", "3 and 4", "\\text{percent}", "percent", "- 3", "-.5", "3."]
SPACES = ["", " ", "  "]


def equation_forms() -> list[str]:
    return [f"{a}{s}={t}{b}" for a in LEFT for b in RIGHT for s in SPACES for t in SPACES]


def test_key_parses_as_the_answer_does():
    """Every form of ``left = right`` with 0-2 spaces on each side parses from its key exactly as written:
    the same sympy objects, and the same text fallback up to the spaces the key drops."""
    from math_verify import parse

    from offcurate.curate.answers.equivalence import as_math

    def read(answer: str) -> tuple[list, list[str]]:
        parsed = parse(as_math(answer), parsing_timeout=None)
        return [p for p in parsed if not isinstance(p, str)], [p for p in parsed if isinstance(p, str)]

    forms = equation_forms()
    changed = 0
    for form in forms:
        key = answer_key(form)
        if key == form:
            continue
        changed += 1
        (exprs, texts), (key_exprs, key_texts) = read(form), read(key)
        assert [(type(e), e) for e in exprs] == [(type(e), e) for e in key_exprs], (form, key)
        assert [answer_key(t) for t in texts] == [answer_key(t) for t in key_texts], (form, key)
    assert changed > len(forms) // 4  # the rule is exercised, not skipped
