"""Regenerate the embedded OpenThoughts3-1.2M-shaped sample in ``data/sample/`` (deterministic).

    python -m offcurate.data.make_sample              # rewrites data/sample/: 2 shards + README.md
    python -m offcurate.data.make_sample -o /tmp/s    # the same files somewhere else

The sample lets ``offcurate pipeline`` (download --sample -> filter -> vote -> stats) run on a fresh
machine. It has the OpenThoughts3 columns (``difficulty``, ``source``, ``domain``, ``conversations``) and
holds, in shuffled order across two shards:

- 48 hand-written competition-style math questions x 16 QwQ-style teacher traces each
  (``<think>...</think>`` then a short solution), built so that every answer-extraction rule and every
  vote outcome of the pipeline occurs several times: equivalent answer forms voting together, unanimous
  (all-positive) questions, split and three-way votes, exact ties, answerless questions, text choices;
  boxes inside the thinking that are revised later, two boxes in the final part, truncated traces (some
  with a box inside the unfinished thinking), traces without thinking tags, stated final answers without
  a box; whitespace noise in the question text of some rows, and ``user``/``assistant`` roles in a few;
- 12 non-math rows (``code`` and ``science``) and 3 unusable math rows (no teacher turn, empty or blank
  teacher text) that ``offcurate filter`` drops and counts.

``build_sample()`` returns the table and, per math question, the intended vote outcome (never written to
disk): tests compare what the pipeline makes of the sample with it. Nothing depends on the clock; the
random choices come from ``random.Random(seed)``, so the files change only when this script does. After
editing it, run it again and commit the regenerated ``data/sample/``.
"""

from __future__ import annotations

import argparse
import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ..curate.io.shards import shard_name, write_table
from . import SAMPLE_DIR

N_SAMPLES = 16
N_SHARDS = 2
SCHEMA = pa.schema(
    [
        ("difficulty", pa.int64()),
        ("source", pa.string()),
        ("domain", pa.string()),
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
    ]
)

OPENMATH2 = "ai2-adapt-dev/openmath-2-math"
OMR = "nvidia/OpenMathReasoning"
NUMINA = "AI-MO/NuminaMath-CoT"

Cluster = tuple[tuple[str, int], ...]  # the written forms of one class of equivalent answers, with counts


def forms(*pairs: str | int) -> Cluster:
    """``forms("x=3", 8, "3", 6)`` -> one class: 8 traces write ``x=3``, 6 write ``3``."""
    return tuple((str(pairs[i]), int(pairs[i + 1])) for i in range(0, len(pairs), 2))


@dataclass(frozen=True)
class Question:
    """One math question and how its 16 traces answer it. ``clusters[0]`` is the correct class."""

    text: str
    source: str
    difficulty: int | None
    family: str  # the answer form the question exercises: fraction, radical, degree, set, choice, ...
    solution: str  # the correct reasoning in one or two sentences (no box, no "the answer is")
    clusters: tuple[Cluster, ...] = ()
    unanswered: int = 0  # traces without an answer: truncated, or a final part that states none
    decoy: str = "0"  # a wrong value boxed inside some thinking, or in the first of two final boxes

    @property
    def votes(self) -> list[int]:
        return [sum(n for _, n in cluster) for cluster in self.clusters]

    @property
    def n_samples(self) -> int:
        return self.unanswered + sum(self.votes)

    @property
    def status(self) -> str:
        votes = sorted(self.votes, reverse=True)
        if not votes:
            return "no_answer"
        return "tie" if len(votes) > 1 and votes[0] == votes[1] else "ok"

    @property
    def kinds(self) -> tuple[str, ...]:
        """The family plus the vote shape, for counting what the sample covers."""
        kinds = [self.family, self.status]
        if self.status == "ok":
            kinds.append("all_positive" if max(self.votes) == self.n_samples else "split")
        if len(self.clusters) >= 3:
            kinds.append("three_way")
        if any(len({"".join(f.split()) for f, _ in cluster}) > 1 for cluster in self.clusters):
            kinds.append("equivalent_forms")
        if self.unanswered and self.clusters:
            kinds.append("some_unanswered")
        return tuple(kinds)

    def expectation(self) -> dict:
        """The intended vote outcome. ``majority_forms[0]`` is the class's most written form, i.e. the
        ``majority_answer`` the vote stage reports; ``question`` is the text without whitespace noise."""
        status = self.status
        top = max(self.clusters, key=lambda c: sum(n for _, n in c)) if self.clusters else ()
        ranked = [f for f, _ in sorted(top, key=lambda fc: -fc[1])]
        return {
            "question": self.text,
            "majority_forms": ranked if status == "ok" else None,
            "status": status,
            "majority_votes": max(self.votes, default=0),
            "n_samples": self.n_samples,
        }


QUESTIONS: tuple[Question, ...] = (
    # --- fractions and decimals -------------------------------------------------------------------------
    Question(
        "A fair coin is flipped twice. What is the probability that exactly one of the two flips is heads? "
        "Express your answer as a common fraction.",
        OPENMATH2,
        1,
        "fraction",
        "The outcomes HH, HT, TH, TT are equally likely and exactly two of them (HT and TH) have one "
        r"head, so the probability is $\frac{2}{4} = \frac{1}{2}$.",
        (forms(r"\frac{1}{2}", 7, "0.5", 3, r"\dfrac12", 3, "1/2", 3),),
        decoy=r"\frac{1}{4}",
    ),
    Question(
        "A positive divisor of $12$ is chosen uniformly at random. What is the probability that it is even? "
        "Express your answer as a common fraction.",
        OPENMATH2,
        2,
        "fraction",
        "The divisors of 12 are 1, 2, 3, 4, 6, 12; four of these six are even, so the probability is "
        r"$\frac{4}{6} = \frac{2}{3}$.",
        (
            forms(r"\frac{2}{3}", 6, r"\dfrac{2}{3}", 2, "2/3", 2, r"\frac{4}{6}", 1),
            forms(r"\frac{1}{2}", 5),
        ),
        decoy=r"\frac{1}{2}",
    ),
    Question(
        r"Evaluate $\displaystyle\sum_{n=1}^{\infty} \frac{1}{n(n+1)(n+2)}$.",
        OMR,
        5,
        "fraction",
        r"Since $\frac{1}{n(n+1)(n+2)} = \frac{1}{2}\left(\frac{1}{n(n+1)} - \frac{1}{(n+1)(n+2)}\right)$, "
        r"the sum telescopes to $\frac{1}{2}\cdot\frac{1}{2} = \frac{1}{4}$.",
        (forms(r"\frac{1}{4}", 6, "0.25", 2, r"\frac14", 2), forms(r"\frac{1}{2}", 4)),
        unanswered=2,
        decoy=r"\frac{1}{2}",
    ),
    Question(
        "Two fair six-sided dice are rolled. What is the probability that the sum of the numbers rolled is "
        "$7$?",
        OPENMATH2,
        1,
        "fraction",
        "Of the 36 equally likely ordered outcomes, the six pairs (1,6), (2,5), (3,4), (4,3), (5,2), (6,1) "
        r"sum to 7, which gives $\frac{6}{36} = \frac{1}{6}$.",
        (forms(r"\frac{1}{6}", 12, r"\dfrac{1}{6}", 4),),
        decoy=r"\frac{1}{12}",
    ),
    Question(
        "Solve for $x$: $4x - 3 = 2x + 4$.",
        NUMINA,
        None,
        "fraction",
        r"Subtracting $2x$ from both sides and adding 3 gives $2x = 7$, so $x = \frac{7}{2}$.",
        (forms(r"\frac{7}{2}", 8, r"x=\frac{7}{2}", 3, "3.5", 2), forms(r"\frac{1}{2}", 3)),
        decoy="7",
    ),
    Question(
        "A fair coin is flipped $4$ times. What is the probability of getting exactly $3$ heads? "
        "Express your answer as a common fraction.",
        OPENMATH2,
        3,
        "fraction",
        r"There are $\binom{4}{3} = 4$ favourable sequences out of $2^4 = 16$, so the probability is "
        r"$\frac{4}{16} = \frac{1}{4}$.",
        (forms(r"\frac{1}{4}", 3, r"\frac{4}{16}", 2, "0.25", 1), forms(r"\frac{3}{8}", 6)),
        unanswered=4,
        decoy=r"\frac{3}{8}",
    ),
    # --- an equation against its value -------------------------------------------------------------------
    Question(
        "Solve for $x$: $2x + 5 = 11$.",
        OPENMATH2,
        1,
        "equation",
        "Subtracting 5 from both sides gives $2x = 6$, and dividing by 2 gives $x = 3$.",
        (forms("x=3", 8, "3", 6, "x = 3", 2),),
        decoy="8",
    ),
    Question(
        "Find the value of $k$ for which the line $y = kx + 2$ passes through the point $(3, 11)$.",
        OPENMATH2,
        2,
        "equation",
        "Substituting the point gives $11 = 3k + 2$, so $3k = 9$ and $k = 3$.",
        (forms("k=3", 7, "3", 5), forms("9", 4)),
        decoy="9",
    ),
    Question(
        r"Find the positive real number $x$ such that $\log_2 x + \log_4 x = 6$.",
        OMR,
        4,
        "equation",
        r"Since $\log_4 x = \tfrac{1}{2}\log_2 x$, the equation becomes $\tfrac{3}{2}\log_2 x = 6$, so "
        r"$\log_2 x = 4$ and $x = 16$.",
        (forms("16", 5, "x=16", 3), forms("4", 8)),
        decoy="64",
    ),
    # --- radicals ----------------------------------------------------------------------------------------
    Question(
        "What is the length of the diagonal of a square with side length $2$? Express your answer in "
        "simplest radical form.",
        OPENMATH2,
        1,
        "radical",
        r"By the Pythagorean theorem the diagonal is $\sqrt{2^2 + 2^2} = \sqrt{8} = 2\sqrt{2}$.",
        (forms(r"2\sqrt{2}", 10, r"\sqrt{8}", 4, r"2 \sqrt 2", 2),),
        decoy="4",
    ),
    Question(
        "What is the distance between the points $(1, 1)$ and $(4, 4)$? Express your answer in simplest "
        "radical form.",
        OPENMATH2,
        2,
        "radical",
        r"The distance is $\sqrt{(4-1)^2 + (4-1)^2} = \sqrt{18} = 3\sqrt{2}$.",
        (forms(r"3\sqrt{2}", 7, r"\sqrt{18}", 3), forms("6", 6)),
        decoy="6",
    ),
    Question(
        r"Simplify $\sqrt{50} + \sqrt{8}$.",
        NUMINA,
        2,
        "radical",
        r"$\sqrt{50} = 5\sqrt{2}$ and $\sqrt{8} = 2\sqrt{2}$, so the sum is $7\sqrt{2}$.",
        (forms(r"7\sqrt{2}", 5, r"\sqrt{98}", 2), forms(r"10\sqrt{2}", 5), forms(r"\sqrt{58}", 4)),
        decoy=r"\sqrt{58}",
    ),
    # --- degrees -----------------------------------------------------------------------------------------
    Question(
        r"In triangle $ABC$, $\angle A = 80^\circ$ and $\angle B = 70^\circ$. What is the measure of "
        r"$\angle C$ in degrees?",
        OPENMATH2,
        1,
        "degree",
        r"The angles of a triangle sum to $180^\circ$, so $\angle C = 180^\circ - 80^\circ - 70^\circ = "
        r"30^\circ$.",
        (forms(r"30^\circ", 9, "30", 5, r"30^{\circ}", 2),),
        decoy=r"150^\circ",
    ),
    Question(
        "What is the measure, in degrees, of each interior angle of a regular hexagon?",
        OPENMATH2,
        2,
        "degree",
        r"The interior angles of a hexagon sum to $(6-2)\cdot 180^\circ = 720^\circ$, so each one is "
        r"$720^\circ / 6 = 120^\circ$.",
        (forms(r"120^\circ", 8, "120", 4), forms(r"60^\circ", 4)),
        decoy=r"60^\circ",
    ),
    Question(
        r"Points $A$, $B$, $C$ lie on a circle, and the arc $AC$ not containing $B$ measures $100^\circ$. "
        r"What is the measure of the inscribed angle $\angle ABC$?",
        OPENMATH2,
        3,
        "degree",
        r"An inscribed angle is half of its intercepted arc, so $\angle ABC = \frac{100^\circ}{2} = "
        r"50^\circ$.",
        (forms(r"50^\circ", 6, "50", 2), forms(r"100^\circ", 8)),
        decoy=r"130^\circ",
    ),
    Question(
        "What is the sum of the interior angles of an octagon, in degrees?",
        OPENMATH2,
        1,
        "degree",
        r"The interior angles of an $n$-gon sum to $(n-2)\cdot 180^\circ$, so for $n = 8$ the sum is "
        r"$6 \cdot 180^\circ = 1080^\circ$.",
        (forms("1080", 10, r"1080^\circ", 6),),
        decoy="1440",
    ),
    # --- sets in any order -------------------------------------------------------------------------------
    Question(
        "Find all real numbers $x$ such that $x^2 - 3x + 2 = 0$.",
        OPENMATH2,
        1,
        "set",
        "Factoring, $x^2 - 3x + 2 = (x-1)(x-2)$, so the solutions are $x = 1$ and $x = 2$.",
        (forms(r"\{1,2\}", 10, r"\{2,1\}", 6),),
        decoy=r"\{-1,-2\}",
    ),
    Question(
        "Find all integers $x$ such that $x^2 = 9$.",
        NUMINA,
        None,
        "set",
        "$x^2 = 9$ means $x = 3$ or $x = -3$, and both are integers.",
        (forms(r"\{-3,3\}", 7, r"\{3,-3\}", 3), forms("3", 6)),
        decoy="3",
    ),
    Question(
        "Find all real solutions of $|x - 1| = 2$.",
        OPENMATH2,
        2,
        "set",
        "Either $x - 1 = 2$, which gives $x = 3$, or $x - 1 = -2$, which gives $x = -1$.",
        (forms(r"\{-1,3\}", 5, r"\{3,-1\}", 4), forms(r"\{3\}", 7)),
        decoy=r"\{3\}",
    ),
    # --- intervals ---------------------------------------------------------------------------------------
    Question(
        "Solve the inequality $x^2 < 4$. Express your answer in interval notation.",
        OPENMATH2,
        2,
        "interval",
        "$x^2 < 4$ holds exactly when $|x| < 2$, that is, when $-2 < x < 2$.",
        (forms("(-2,2)", 9, "(-2, 2)", 4, "-2<x<2", 3),),
        decoy="(-4,4)",
    ),
    Question(
        r"Solve $|x - 3| \le 1$. Express your answer in interval notation.",
        OPENMATH2,
        3,
        "interval",
        r"$|x - 3| \le 1$ means $-1 \le x - 3 \le 1$, so $2 \le x \le 4$, endpoints included.",
        (forms("[2,4]", 8, r"2\le x\le 4", 2), forms("(2,4)", 6)),
        decoy="(2,4)",
    ),
    Question(
        r"What is the domain of the function $f(x) = \sqrt{x - 1}$? Express your answer in interval "
        "notation.",
        OPENMATH2,
        2,
        "interval",
        r"The radicand must be nonnegative: $x - 1 \ge 0$, so $x \ge 1$, which is $[1,\infty)$.",
        (forms(r"[1,\infty)", 9, r"x\ge 1", 2), forms(r"(1,\infty)", 5)),
        decoy=r"(1,\infty)",
    ),
    # --- multiple choice ---------------------------------------------------------------------------------
    Question(
        r"Which of the following numbers is prime? $\textbf{(A)}\ 21 \qquad \textbf{(B)}\ 23 \qquad "
        r"\textbf{(C)}\ 25 \qquad \textbf{(D)}\ 27 \qquad \textbf{(E)}\ 33$",
        OPENMATH2,
        1,
        "choice",
        r"$21 = 3 \cdot 7$, $25 = 5^2$, $27 = 3^3$ and $33 = 3 \cdot 11$, while 23 has no divisor between 2 "
        "and 4, so only 23 is prime.",
        (forms(r"\text{(B)}", 8, "B", 3, r"\textbf{(B)}", 1), forms(r"\text{(D)}", 4)),
        decoy=r"\text{(A)}",
    ),
    Question(
        r"Which of the following is the largest? $\textbf{(A)}\ 2^{30} \qquad \textbf{(B)}\ 3^{20} "
        r"\qquad \textbf{(C)}\ 5^{10} \qquad \textbf{(D)}\ 10^{6} \qquad \textbf{(E)}\ 6^{12}$",
        OMR,
        4,
        "choice",
        r"$2^{30} = 8^{10} < 9^{10} = 3^{20}$, $6^{12} \approx 2.2 \times 10^{9}$ is below $3^{20} \approx "
        r"3.5 \times 10^{9}$, and $5^{10}$ and $10^6$ are far smaller, so $3^{20}$ is the largest.",
        (forms(r"\text{(B)}", 6, "B", 4), forms(r"\text{(E)}", 4, "E", 2)),
        decoy=r"\text{(A)}",
    ),
    Question(
        r"What is the units digit of $7^{2023}$? $\textbf{(A)}\ 1 \qquad \textbf{(B)}\ 3 \qquad "
        r"\textbf{(C)}\ 5 \qquad \textbf{(D)}\ 7 \qquad \textbf{(E)}\ 9$",
        OPENMATH2,
        3,
        "choice",
        "The units digits of the powers of 7 cycle through 7, 9, 3, 1 with period 4, and "
        r"$2023 \equiv 3 \pmod 4$, so the units digit is 3.",
        (forms(r"\text{(B)}", 5, "B", 3), forms(r"\text{(D)}", 6, "D", 2)),
        decoy=r"\text{(E)}",
    ),
    # --- integers, expressions, tuples -------------------------------------------------------------------
    Question(
        "What is the remainder when $2^{100}$ is divided by $7$?",
        OPENMATH2,
        2,
        "integer",
        r"$2^3 = 8 \equiv 1 \pmod 7$ and $100 = 3 \cdot 33 + 1$, so $2^{100} \equiv 2 \pmod 7$.",
        (forms("2", 16),),
        decoy="4",
    ),
    Question(
        "How many positive divisors does $360$ have?",
        OPENMATH2,
        2,
        "integer",
        r"$360 = 2^3 \cdot 3^2 \cdot 5$, so it has $(3+1)(2+1)(1+1) = 24$ positive divisors.",
        (forms("24", 15),),
        unanswered=1,
        decoy="20",
    ),
    Question(
        "How many distinct arrangements of the letters in the word BANANA are there?",
        OPENMATH2,
        2,
        "integer",
        "There are $6!$ orderings of the letters, divided by $3!$ for the A's and $2!$ for the N's: "
        r"$\frac{720}{12} = 60$.",
        (forms("60", 13), forms("120", 3)),
        decoy="720",
    ),
    Question(
        "In how many ways can a committee of $3$ people be chosen from a group of $10$ people?",
        OPENMATH2,
        1,
        "integer",
        r"Order does not matter, so the count is $\binom{10}{3} = \frac{10 \cdot 9 \cdot 8}{3!} = 120$.",
        (forms("120", 16),),
        decoy="720",
    ),
    Question(
        "What is the coefficient of $x^2$ in the expansion of $(1 + 2x)^5$?",
        OPENMATH2,
        3,
        "integer",
        r"The $x^2$ term is $\binom{5}{2}(2x)^2 = 10 \cdot 4x^2 = 40x^2$.",
        (forms("40", 10), forms("10", 6)),
        decoy="10",
    ),
    Question(
        "Simplify $(x + 1)^2 - (x - 1)^2$.",
        OPENMATH2,
        1,
        "expression",
        "Expanding, $(x^2 + 2x + 1) - (x^2 - 2x + 1) = 4x$.",
        (forms("4x", 12, "4 x", 4),),
        decoy="2",
    ),
    Question(
        "What is the minimum value of $x^2 - 6x + 13$ over all real numbers $x$?",
        NUMINA,
        3,
        "integer",
        "Completing the square, $x^2 - 6x + 13 = (x - 3)^2 + 4$, which is smallest at $x = 3$, where it "
        "equals 4.",
        (forms("4", 7), forms("3", 5), forms("13", 4)),
        decoy="13",
    ),
    Question(
        "What is the sum of the first $50$ positive odd integers?",
        OPENMATH2,
        1,
        "integer",
        "The sum of the first $n$ odd numbers is $n^2$, so the sum is $50^2 = 2500$.",
        (forms("2500", 16),),
        decoy="2550",
    ),
    Question(
        "If $f(x) = 3x + 2$, find $f^{-1}(11)$.",
        OPENMATH2,
        2,
        "integer",
        "We need the $x$ with $3x + 2 = 11$, so $3x = 9$ and $x = 3$.",
        (forms("3", 8), forms("35", 8)),
        decoy="35",
    ),
    Question(
        r"A circle has circumference $10\pi$. What is its area? Express your answer in terms of $\pi$.",
        OPENMATH2,
        2,
        "expression",
        r"The radius is $r = \frac{10\pi}{2\pi} = 5$, so the area is $\pi r^2 = 25\pi$.",
        (forms(r"25\pi", 10, r"25 \pi", 2), forms(r"100\pi", 4)),
        decoy=r"100\pi",
    ),
    Question(
        "Evaluate $i^{2023}$, where $i^2 = -1$.",
        OMR,
        3,
        "expression",
        r"The powers of $i$ repeat with period 4 and $2023 \equiv 3 \pmod 4$, so $i^{2023} = i^3 = -i$.",
        (forms("-i", 16),),
        decoy="i",
    ),
    Question(
        "What is the sum of the roots of $2x^2 - 8x + 3 = 0$?",
        OPENMATH2,
        2,
        "integer",
        r"By Vieta's formulas the sum of the roots is $-\frac{-8}{2} = 4$.",
        (forms("4", 9), forms("-4", 7)),
        decoy="-4",
    ),
    Question(
        "What is the product of the roots of $x^3 - 6x^2 + 11x - 6 = 0$?",
        OPENMATH2,
        2,
        "integer",
        "For a monic cubic $x^3 + ax^2 + bx + c$ the product of the roots is $-c$, here 6; indeed the roots "
        "are 1, 2 and 3.",
        (forms("6", 16),),
        decoy="-6",
    ),
    Question(
        "Solve the system $x + y = 5$, $x - y = 1$. Give your answer as an ordered pair $(x, y)$.",
        OPENMATH2,
        1,
        "tuple",
        "Adding the two equations gives $2x = 6$, so $x = 3$, and then $y = 5 - 3 = 2$.",
        (forms("(3,2)", 10, "(3, 2)", 4), forms("(2,3)", 2)),
        decoy="(2,3)",
    ),
    Question(
        "What is the greatest common divisor of $84$ and $126$?",
        OPENMATH2,
        1,
        "integer",
        r"$84 = 2^2 \cdot 3 \cdot 7$ and $126 = 2 \cdot 3^2 \cdot 7$, so their gcd is "
        r"$2 \cdot 3 \cdot 7 = 42$.",
        (forms("42", 16),),
        decoy="21",
    ),
    Question(
        "What are the last two digits of $3^{100}$?",
        OMR,
        5,
        "integer",
        r"$3^{10} = 59049 \equiv 49 \pmod{100}$ and $49^2 = 2401 \equiv 1$, so $3^{20} \equiv 1$ and "
        r"$3^{100} = (3^{20})^5 \equiv 1 \pmod{100}$: the last two digits are 01.",
        (forms("01", 4, "1", 3), forms("49", 5), forms("81", 4)),
        decoy="49",
    ),
    Question(
        "What is the area of the triangle with vertices $(0,0)$, $(4,0)$ and $(0,3)$?",
        OPENMATH2,
        1,
        "integer",
        r"It is a right triangle with legs 4 and 3, so its area is $\frac{1}{2} \cdot 4 \cdot 3 = 6$.",
        (forms("6", 16),),
        decoy="12",
    ),
    Question(
        r"What is the volume of a sphere of radius $3$? Express your answer in terms of $\pi$.",
        OPENMATH2,
        2,
        "expression",
        r"$V = \frac{4}{3}\pi r^3 = \frac{4}{3}\pi \cdot 27 = 36\pi$.",
        (forms(r"36\pi", 11), forms(r"108\pi", 5)),
        decoy=r"108\pi",
    ),
    Question(
        r"Evaluate $\displaystyle\lim_{x \to 0} \frac{\sin 3x}{x}$.",
        NUMINA,
        None,
        "integer",
        r"Writing $\frac{\sin 3x}{x} = 3 \cdot \frac{\sin 3x}{3x}$ and using "
        r"$\lim_{t \to 0} \frac{\sin t}{t} = 1$ gives 3.",
        (forms("3", 16),),
        decoy="1",
    ),
    # --- answerless: every trace is cut inside the thinking or ends without a stated value --------------
    Question(
        r"Let $S$ be the set of positive integers $n \le 10^{6}$ such that $n^2 + 1$ has a prime factor "
        r"greater than $2n + \sqrt{2n}$. Find the number of elements of $S$.",
        OMR,
        10,
        "integer",
        r"A prime $p \mid n^2 + 1$ with $p > 2n$ forces $n^2 + 1 = p \cdot m$ with small $m$, and the bound "
        r"$p > 2n + \sqrt{2n}$ restricts $m$ further.",
        unanswered=16,
        decoy="499500",
    ),
    Question(
        r"Find the number of ordered triples $(a, b, c)$ of positive integers with $a \le b \le c$ and "
        r"$abc = 2^{10} \cdot 3^{7} \cdot 5^{4}$ such that $a + b + c$ is divisible by $7$.",
        OMR,
        9,
        "integer",
        r"Distributing the exponents of 2, 3 and 5 among $a$, $b$, $c$ gives $\binom{12}{2}\binom{9}{2}"
        r"\binom{6}{2}$ ordered triples before the ordering and divisibility conditions are imposed.",
        unanswered=16,
        decoy="1536",
    ),
    Question(
        "Determine the smallest positive integer $n$ such that every $n$-element subset of "
        r"$\{1, 2, \ldots, 2024\}$ contains two distinct elements $a$ and $b$ with $a^2 + b^2$ a perfect "
        "square.",
        OPENMATH2,
        10,
        "integer",
        "Pythagorean pairs $(3k, 4k)$ and $(5k, 12k)$ give many forced pairs, and a large subset avoiding "
        "all of them can be built from numbers with few small prime factors.",
        unanswered=16,
        decoy="1012",
    ),
    Question(
        "A frog starts at the origin and each second jumps to one of the four neighbouring lattice points, "
        "uniformly at random. Find the probability that it reaches the point $(3, 3)$ before it returns to "
        "the origin. Express your answer as a common fraction.",
        NUMINA,
        9,
        "fraction",
        "By symmetry this is an escape probability on the grid, which can be set up as an electrical "
        "network between the origin and $(3,3)$.",
        unanswered=16,
        decoy=r"\frac{1}{8}",
    ),
)

# --- rows the filter drops ----------------------------------------------------------------------------------

NON_MATH: tuple[tuple[str, str, int | None, str, str], ...] = (
    (
        "code",
        "nvidia/OpenCodeReasoning",
        4,
        "Given an array of $n$ integers, find the length of the longest strictly increasing contiguous "
        "subarray. Read $n$ and the array from standard input and print the answer.",
        "<think>\nOkay, so I need the longest run where each element is bigger than the one before. A single "
        "pass works: keep the current run length, reset it to 1 when a[i] <= a[i-1], and track the "
        "maximum. Edge case: n = 1 gives 1.\n</think>\n\n```python\nn = int(input())\na = list(map(int, "
        "input().split()))\nbest = cur = 1\nfor i in range(1, n):\n    cur = cur + 1 if a[i] > a[i - 1] "
        "else 1\n    best = max(best, cur)\nprint(best)\n```",
    ),
    (
        "code",
        "nvidia/OpenCodeReasoning",
        6,
        "You are given a string $s$ of lowercase letters. Count the number of distinct palindromic "
        r"substrings of $s$ ($|s| \le 2000$).",
        "<think>\nFor n up to 2000, expanding around every center is O(n^2) and collecting the substrings "
        "in a set is fine memory-wise if I store (start, end) hashes. Let me use a set of the substrings "
        "themselves; the total length is bounded well enough for this limit.\n</think>\n\n```python\ns = "
        "input().strip()\nseen = set()\nfor c in range(2 * len(s) - 1):\n    i, j = c // 2, (c + 1) // 2\n"
        "    while i >= 0 and j < len(s) and s[i] == s[j]:\n        seen.add(s[i:j + 1])\n        i -= 1\n"
        "        j += 1\nprint(len(seen))\n```",
    ),
    (
        "code",
        "stackexchange_codegolf",
        8,
        "Write the shortest program that prints the first $100$ prime numbers, one per line.",
        "<think>\nTrial division is short enough. In Python: loop k upward, test all(k % d for d in "
        "range(2, k)), print until 100 primes.\n</think>\n\n```python\nk=1;c=0\nwhile c<100:\n k+=1\n if "
        "all(k%d for d in range(2,k)):print(k);c+=1\n```",
    ),
    (
        "code",
        "nvidia/OpenCodeReasoning",
        5,
        "Given a tree with $n$ vertices, find its diameter (the number of edges on the longest path).",
        "<think>\nClassic: BFS from any vertex to find the farthest vertex u, then BFS from u; the largest "
        "distance is the diameter.\n</think>\n\nRun a breadth-first search from vertex 1 to find the "
        "farthest vertex $u$, then a second search from $u$; the greatest distance found is the "
        "diameter. Both searches are $O(n)$.",
    ),
    (
        "code",
        "stackexchange_codegolf",
        7,
        r"Output the $n$-th Fibonacci number for $0 \le n \le 90$ in as few bytes as possible.",
        "<think>\nIterative pair update is the shortest robust approach; recursion is too slow for n = 90."
        "\n</think>\n\n```python\na,b=0,1\nexec('a,b=b,a+b;'*int(input()))\nprint(a)\n```",
    ),
    (
        "code",
        "nvidia/OpenCodeReasoning",
        None,
        "Implement a function that checks whether a string of brackets `()[]{}` is balanced.",
        "<think>\nA stack: push opening brackets, and on a closing bracket pop and compare. The string is "
        "balanced if every pop matches and the stack ends empty.\n</think>\n\n```python\ndef balanced(s):\n"
        "    pairs = {')': '(', ']': '[', '}': '{'}\n    stack = []\n    for ch in s:\n        if ch in "
        "'([{':\n            stack.append(ch)\n        elif not stack or stack.pop() != pairs[ch]:\n"
        "            return False\n    return not stack\n```",
    ),
    (
        "science",
        "organic-chemistry-questions",
        5,
        r"What is the hybridization of the carbon atoms in ethyne ($\mathrm{C_2H_2}$)?",
        "<think>\nEach carbon in HC≡CH has two electron domains (one triple bond, one single bond), so it "
        "uses two hybrid orbitals.\n</think>\n\nEach carbon forms a triple bond to the other carbon and a "
        "single bond to hydrogen: two electron domains, linear geometry, so the carbons are "
        r"$\boxed{sp}$ hybridized.",
    ),
    (
        "science",
        "organic-chemistry-questions",
        6,
        "How many stereoisomers does 2,3-dibromobutane have?",
        "<think>\nTwo stereocenters give at most 4, but the (2R,3S) form has a mirror plane, so it is meso "
        "and the same as (2S,3R). That leaves 3.\n</think>\n\nThe two stereocentres allow four "
        "configurations, but the $(2R,3S)$ and $(2S,3R)$ forms are one meso compound, so there are "
        r"$\boxed{3}$ stereoisomers.",
    ),
    (
        "science",
        "stackexchange-physics",
        7,
        "Why does a spinning top not fall over immediately, even though gravity exerts a torque on it?",
        "<think>\nThe torque changes the angular momentum vector horizontally, so the axis precesses instead "
        "of tipping, as long as the spin angular momentum is large.\n</think>\n\nGravity's torque is "
        "perpendicular to the spin angular momentum, so it rotates that vector instead of shrinking it: the "
        "axis precesses around the vertical. The top falls only once friction has slowed the spin enough "
        "that precession can no longer carry the torque.",
    ),
    (
        "science",
        "stackexchange-physics",
        4,
        r"A ball is dropped from rest from a height of $20\,\mathrm{m}$. Ignoring air resistance and taking "
        r"$g = 10\,\mathrm{m/s^2}$, how long does it take to reach the ground?",
        "<think>\n$h = \\frac{1}{2} g t^2$, so $t = \\sqrt{2h/g} = \\sqrt{4} = 2$ s.\n</think>\n\nFrom "
        r"$h = \tfrac{1}{2} g t^2$ we get $t = \sqrt{2h/g} = \sqrt{40/10} = \boxed{2\,\mathrm{s}}$.",
    ),
    (
        "science",
        "organic-chemistry-questions",
        3,
        "What is the major product when propene reacts with HBr in the absence of peroxides?",
        "<think>\nMarkovnikov addition: H goes to the terminal carbon, Br to the secondary carbon via the "
        "more stable secondary carbocation.\n</think>\n\nProtonation gives the more stable secondary "
        "carbocation, which bromide then attacks: the product is 2-bromopropane.",
    ),
    (
        "science",
        "stackexchange-physics",
        None,
        "Is the speed of light in a medium with refractive index $n = 1.5$ faster or slower than in vacuum, "
        "and by what factor?",
        "<think>\n$v = c/n$, so it is slower by a factor 1.5.\n</think>\n\nIn the medium $v = c/n = c/1.5$: "
        r"light is slower by a factor of $1.5$, about $2 \times 10^8\,\mathrm{m/s}$.",
    ),
)

UNUSABLE: tuple[tuple[str, list[dict]], ...] = (
    (  # the teacher turn is missing altogether
        "no_teacher_turn",
        [{"from": "human", "value": r"Compute $\binom{8}{4}$."}],
    ),
    (  # the teacher turn is there but empty
        "empty_response",
        [
            {"from": "human", "value": "What is the least common multiple of $18$ and $24$?"},
            {"from": "gpt", "value": ""},
        ],
    ),
    (  # only whitespace in the teacher turn
        "empty_response",
        [
            {"from": "user", "value": "How many edges does a cube have?"},
            {"from": "assistant", "value": " \n\n "},
        ],
    ),
)

# --- trace text ---------------------------------------------------------------------------------------------

OPENERS = (
    "Okay, let me try to figure this out.",
    "Alright, let's see what the problem is asking.",
    "Hmm, okay. Let me read the problem again and set things up.",
    "Okay, so I need to solve this. Let me start with what is given.",
    "Let me think about this step by step.",
    "Okay, I've seen problems like this before. Let me recall the standard approach.",
)
FILLERS = (
    "Let me write down what I know before doing anything clever.",
    "First, I should check whether a standard formula applies here.",
    "Maybe trying a small case first will show the pattern.",
    "Wait, let me double-check the arithmetic in that step.",
    "That seems right, but I want to verify it another way.",
    "Hold on, did I read the question correctly? Yes, that is what it says.",
    "Let me think about whether there are any edge cases I'm missing.",
    "Plugging the numbers back in should confirm it.",
    "Alternatively, I could approach this from the other direction and see if I get the same thing.",
    "Hmm, okay, that matches what I had before.",
    "I think the key observation is to simplify the expression before computing anything.",
    "Let me be careful with signs here; that is where mistakes usually happen.",
    "The problem seems straightforward, but these sometimes hide a trap, so let me go slowly.",
    "Let me also make sure the units and the requested form are right.",
    "Okay, I'll redo the main step from scratch to be safe.",
    "Is there a quicker way to see this? Possibly, but the direct route is fine.",
    "Let me sanity-check the size of the result; it should not be huge.",
    "Hmm, let me reconsider the setup once more.",
)
WRONG_STEPS = (
    "Working through the computation, I get ${f}$.",
    "Putting the pieces together, the value comes out to ${f}$.",
    "If I set it up this way, I end up with ${f}$, which looks reasonable.",
    "Counting it directly gives ${f}$.",
)
CONCLUSIONS = (
    "So it should be ${f}$.",
    "Okay, that settles it: ${f}$.",
    "I'm fairly confident now. Let me write it up.",
    "Yes, ${f}$. Let me present the solution.",
)
REVISIONS = (
    r"So that gives $\boxed{{{w}}}$? Wait, no. I think I made a slip there, let me redo that step.",
    r"My first instinct is $\boxed{{{w}}}$, but hold on, that does not account for everything.",
    r"That would make it $\boxed{{{w}}}$. Hmm, actually, no: I dropped a factor. Let me go back.",
)
BOXED_ENDINGS = (
    r"Therefore, the answer is $\boxed{{{f}}}$.",
    r"The answer is $\boxed{{{f}}}$.",
    "\\[\n\\boxed{{{f}}}\n\\]",
    "**Final Answer**\n\\[\n\\boxed{{{f}}}\n\\]",
    r"So the final result is $\boxed{{{f}}}$.",
)
STATED_ENDINGS = (
    "The final answer is ${f}$.",
    "**Final Answer:** ${f}$",
    "Hence the final answer is: ${f}$",
)
STATED_BARE = "**Final Answer:** {f}"  # only for plain forms such as 42, B, 0.5, 1/2
TWO_BOXES = (
    r"A first pass gives $\boxed{{{w}}}$, but that overlooks a case; correcting for it, the answer is "
    r"$\boxed{{{f}}}$."
)
RESTATE = (
    "The problem says: {q}",
    "So the question is: {q}",
    "We have: {q}",
    "Restating it to be sure: {q}",
)
NO_TAG_OPENERS = ("Let's solve this step by step.", "We work directly from the definitions.", "**Solution.**")
CHECKS = (
    "Every step above is reversible, so no solutions were gained or lost along the way.",
    "As a check, substituting the value back into the original conditions gives a consistent result.",
    "A rough estimate of the size of the result agrees with the exact computation.",
    "The same value comes out if the computation is organized in the opposite order.",
    "No special cases arise: none of the quantities involved can vanish or change sign here.",
    "This is also the form of the result the problem asks for.",
)
PARTIAL_BOXES = (
    r"Tentatively that is $\boxed{{{w}}}$, but I'm not sure the case analysis is complete.",
    r"So maybe $\boxed{{{w}}}$? No wait, the second case still needs to be counted.",
)
CUTS = (
    "Now, for the case where",
    "Let me redo this with the substitution $t =",
    "So the remaining count is",
    "Hmm, wait. If I instead take the",
    "Next I need to handle the terms with",
)
UNFINISHED = (
    "I was not able to complete the argument: the case analysis above is unfinished, so I cannot commit "
    "to a value.",
    "The reduction above is as far as I got; the remaining count still has to be carried out.",
)
NOISES = (
    lambda q, i: q + "\n",
    lambda q, i: q[:i] + "  " + q[i:],
    lambda q, i: " " + q + "  ",
    lambda q, i: q[:i] + " \n" + q[i:],
)


def _plain(form: str) -> bool:
    return all(c.isalnum() or c in "./-" for c in form)


def _thinking(rng: random.Random, q: Question, core: list[str], target: int) -> str:
    """Opener and restated question, a few musings, the core paragraphs, then more short paragraphs of
    checking until the text is about ``target`` bytes."""
    fillers = list(FILLERS)
    rng.shuffle(fillers)
    opener = f"{rng.choice(OPENERS)} {rng.choice(RESTATE).format(q=q.text)}"
    paragraphs = [opener, " ".join(fillers.pop() for _ in range(rng.randint(1, 2))), *core]
    while fillers and len("\n\n".join(paragraphs).encode()) < target:
        paragraphs.append(" ".join(fillers.pop() for _ in range(min(len(fillers), rng.randint(1, 3)))))
    return "\n\n".join(paragraphs)


def _key(form: str) -> str:
    return "".join(form.split())


def _trace(q: Question, rng: random.Random, cluster: int | None, form: str | None) -> str:
    """One teacher trace whose extracted answer is ``form``, of class ``cluster`` (both None: no answer)."""
    target = rng.randint(600, 1200)
    if cluster is None:
        core = [q.solution]
        if rng.random() < 0.55:  # a box in the unfinished thinking, even the right value: it never counts
            core.append(
                rng.choice(PARTIAL_BOXES).format(w=rng.choice([c[0][0] for c in q.clusters] + [q.decoy]))
            )
        thinking = _thinking(rng, q, core, target)
        if rng.random() < 0.75:  # cut at the length limit, inside the thinking
            return f"<think>\n{thinking}\n\n{rng.choice(CUTS)}"
        return f"<think>\n{thinking}\n</think>\n\n{q.solution}\n\n{rng.choice(UNFINISHED)}"

    own = {_key(f) for f, _ in q.clusters[cluster]}
    others = [c[0][0] for i, c in enumerate(q.clusters) if i != cluster] + [q.decoy]
    other = rng.choice([w for w in others if _key(w) not in own] or [q.decoy])
    correct = cluster == 0
    step = q.solution if correct else rng.choice(WRONG_STEPS).format(f=form)
    summary = q.solution if correct else rng.choice(WRONG_STEPS).format(f=form)
    style = rng.choices(["boxed", "two_boxes", "stated", "no_tags"], weights=[60, 10, 15, 15])[0]
    if style == "no_tags":  # no thinking tags: the whole trace is the final part
        checks = list(CHECKS)
        rng.shuffle(checks)
        text = f"{rng.choice(NO_TAG_OPENERS)} {rng.choice(RESTATE).format(q=q.text)}\n\n{summary}\n\n"
        while checks and len(text.encode()) < target - 100:
            text += checks.pop() + " "
        return text.rstrip() + "\n\n" + rng.choice(BOXED_ENDINGS).format(f=form)
    core = [step]
    if rng.random() < 0.25:  # a box in the thinking, revised before the final part
        core = [rng.choice(REVISIONS).format(w=other), step]
    core.append(rng.choice(CONCLUSIONS).format(f=form))
    thinking = _thinking(rng, q, core, target)
    if style == "two_boxes":
        ending = TWO_BOXES.format(w=other, f=form)
    elif style == "stated":
        endings = STATED_ENDINGS + ((STATED_BARE,) if _plain(form) else ())
        ending = rng.choice(endings).format(f=form)
    else:
        ending = rng.choice(BOXED_ENDINGS).format(f=form)
    return f"<think>\n{thinking}\n</think>\n\n{summary}\n\n{ending}"


def _noisy(text: str, rng: random.Random) -> str:
    spaces = [i for i, c in enumerate(text) if c == " "]
    return rng.choice(NOISES)(text, rng.choice(spaces))


def _row(difficulty, source, domain, turns) -> dict:
    return {"difficulty": difficulty, "source": source, "domain": domain, "conversations": turns}


def _turns(question: str, response: str, rng: random.Random) -> list[dict]:
    roles = ("user", "assistant") if rng.random() < 0.06 else ("human", "gpt")
    return [{"from": roles[0], "value": question}, {"from": roles[1], "value": response}]


def _question_rows(q: Question, rng: random.Random) -> list[dict]:
    outcomes: list[tuple[int | None, str | None]] = [(None, None)] * q.unanswered
    for index, cluster in enumerate(q.clusters):
        outcomes += [(index, form) for form, count in cluster for _ in range(count)]
    rng.shuffle(outcomes)
    noisy = rng.random() < 0.4  # some copies of this question carry whitespace noise
    rows, seen = [], set()
    for cluster, form in outcomes:
        response = _trace(q, rng, cluster, form)
        while response in seen:  # every sample is its own trajectory
            response = _trace(q, rng, cluster, form)
        seen.add(response)
        text = _noisy(q.text, rng) if noisy and rng.random() < 0.35 else q.text
        rows.append(_row(q.difficulty, q.source, "math", _turns(text, response, rng)))
    return rows


def build_sample(seed: int = 0) -> tuple[pa.Table, list[dict]]:
    """The sample as one table (shard 0's rows, then shard 1's) and the intended outcome per math question.

    Each expectation: ``question`` (without whitespace noise; match on ``filter.question_id``),
    ``majority_forms`` (written forms of the majority class, most written first; None unless status ok),
    ``status`` (ok / tie / no_answer), ``majority_votes`` (size of the largest class, 0 without answers)
    and ``n_samples`` (16).
    """
    rng = random.Random(seed)
    rows: list[dict] = []
    for q in QUESTIONS:
        rows += _question_rows(q, rng)
    for domain, source, difficulty, question, response in NON_MATH:
        rows.append(_row(difficulty, source, domain, _turns(question, response, rng)))
    for _, turns in UNUSABLE:
        rows.append(_row(rng.randint(1, 5), OPENMATH2, "math", turns))
    rng.shuffle(rows)
    return pa.Table.from_pylist(rows, SCHEMA), [q.expectation() for q in QUESTIONS]


def split_shards(table: pa.Table, count: int = N_SHARDS) -> list[pa.Table]:
    """Contiguous, nearly equal slices: what ``main`` writes as ``train-0000i-of-0000count.parquet``."""
    size = -(-table.num_rows // count)
    return [table.slice(i * size, size) for i in range(count)]


def card(table: pa.Table, expectations: Sequence[dict]) -> str:
    """The dataset card of ``data/sample/`` (README.md)."""
    domains = Counter(table.column("domain").to_pylist())
    status = Counter(e["status"] for e in expectations)
    all_positive = sum(e["status"] == "ok" and e["majority_votes"] == e["n_samples"] for e in expectations)
    text = """---
license: apache-2.0
language:
- en
pretty_name: OpenThoughts3-shaped sample (offcurate)
size_categories:
- n<1K
configs:
- config_name: default
  data_files:
  - split: train
    path: "*.parquet"
---

# OpenThoughts3-shaped sample

A small, synthetic dataset with the columns of
[open-thoughts/OpenThoughts3-1.2M](https://huggingface.co/datasets/open-thoughts/OpenThoughts3-1.2M), embedded
in offcurate so that `offcurate pipeline -o runs/demo` (download --sample -> filter -> vote -> stats) runs
on a fresh machine without a download. It is test data, not training data: the questions, traces and
answers were written for offcurate, not taken from OpenThoughts3.

| column | type |
|---|---|
| `difficulty` | int64 (nullable) |
| `source` | string |
| `domain` | string |
| `conversations` | list<struct<from: string, value: string>> (question turn, then teacher turn) |

## Contents

{rows} rows in {N_SHARDS} shards:

- {questions} competition-style math questions x {N_SAMPLES} QwQ-style traces each ({traces} rows):
  `<think>...</think>` then a short solution. The rows of a question are spread over both shards in
  shuffled order; some copies of a question carry whitespace noise, a few rows spell the roles
  `user`/`assistant` instead of `human`/`gpt`.
- Intended vote outcomes: {ok} `ok` ({all_positive} of them all-positive), {tie} `tie`,
  {no_answer} `no_answer`.
- The traces exercise every answer-extraction rule: the last `\\boxed{{...}}` after `</think>` (nested
  braces), boxes inside the thinking that are revised later, traces cut inside `<think>` (no answer, even
  with a box in the unfinished thinking), traces without thinking tags, and stated final answers without
  a box. Equivalent forms must vote together: `\\frac{{1}}{{2}}`, `0.5`, `1/2`; `x=3` and `3`;
  `2\\sqrt{{2}}` and `\\sqrt{{8}}`; `30^\\circ` and `30`; `\\{{1,2\\}}` and `\\{{2,1\\}}`; intervals;
  `\\text{{(B)}}` and `B`.
- {other} non-math rows (`code`, `science`) and {unusable} unusable math rows (no teacher turn, empty
  teacher text) that `offcurate filter` drops and counts.

## How it was made

`data/make_sample.py` builds every row from hand-written questions and text templates with
`random.Random(0)` and writes the shards with pyarrow (zstd); nothing depends on the clock, so running it
again gives the same rows. Regenerate after editing the script:

```bash
python -m offcurate.data.make_sample
```
"""
    return text.format(
        rows=table.num_rows,
        N_SHARDS=N_SHARDS,
        questions=len(expectations),
        N_SAMPLES=N_SAMPLES,
        traces=sum(e["n_samples"] for e in expectations),
        ok=status["ok"],
        all_positive=all_positive,
        tie=status["tie"],
        no_answer=status["no_answer"],
        other=domains["code"] + domains["science"],
        unusable=len(UNUSABLE),
    )


def write_sample(folder: Path | str = SAMPLE_DIR, seed: int = 0) -> list[Path]:
    """Write the shards and README.md into ``folder``; stale ``train-*.parquet`` files there are removed."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    table, expectations = build_sample(seed)
    paths = []
    for i, shard in enumerate(split_shards(table)):
        path = folder / shard_name(i, N_SHARDS)
        write_table(shard, path)
        paths.append(path)
    for stale in sorted(folder.glob("train-*.parquet")):
        if stale not in paths:
            stale.unlink()
    readme = folder / "README.md"
    readme.write_text(card(table, expectations), encoding="utf-8")
    return [*paths, readme]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m offcurate.data.make_sample", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("-o", "--output", type=Path, default=SAMPLE_DIR, help="folder (default: %(default)s)")
    args = parser.parse_args(argv)
    for path in write_sample(args.output):
        print(f"{path}  {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
