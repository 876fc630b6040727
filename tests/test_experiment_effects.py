"""The experiment's effects tables, on frames written by hand: pass@1 by base pass rate, teacher log-probs.

python -m pytest tests/test_experiment_effects.py -q
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from offcurate.experiment.effects import by_base_pass, effects_tables, teacher_logprob_table, write_effects

# four all-positive questions (base right never, twice sometimes, always), one mixed question
BASE = pl.DataFrame(
    {
        "question_id": ["q0", "q1", "q2", "q3", "q4"],
        "teacher_all_positive": [True, True, True, True, False],
        "base_pass_rate": [0.0, 0.25, 0.75, 1.0, 0.5],
        "base_samples": [4, 4, 4, 4, 4],
    }
)
QUESTIONS = pl.DataFrame(
    {"question_id": [f"q{i}" for i in range(5)], "question": [f"Q{i}" for i in range(5)]}
)


def _eval(folder: Path, rows: list[tuple[str, str, float]]) -> Path:
    folder.mkdir(parents=True)
    frame = pl.DataFrame(rows, schema=["benchmark", "question", "pass_at_1"], orient="row")
    frame.write_parquet(folder / "results.parquet")
    return folder


@pytest.fixture()
def run(tmp_path):
    (tmp_path / "figure2").mkdir()
    BASE.write_parquet(tmp_path / "figure2" / "base_pass_rate.parquet")
    (tmp_path / "voted" / "questions").mkdir(parents=True)
    QUESTIONS.write_parquet(tmp_path / "voted" / "questions" / "part-0.parquet")
    held_out = [("held-out", "H1", 0.5)]  # not a training question: in no bucket
    evals = {
        "base": _eval(
            tmp_path / "base",
            [
                ("trained", "Q0", 0.0),
                ("trained", "Q1", 0.5),
                ("trained", "Q2", 0.5),
                ("trained", "Q3", 1.0),
                ("trained", "Q4", 0.5),
                *held_out,
            ],
        ),  # fmt: skip
        "bias": _eval(
            tmp_path / "bias",
            [
                ("trained", "Q0", 0.25),
                ("trained", "Q1", 1.0),
                ("trained", "Q2", 0.75),
                ("trained", "Q3", 1.0),
                ("trained", "Q4", 0.0),
                *held_out,
            ],
        ),  # fmt: skip
    }
    return tmp_path, evals


def test_by_base_pass_buckets_the_all_positive_questions_by_the_rollouts_rate(run):
    root, evals = run
    table = by_base_pass(evals, root / "voted", root / "figure2")
    expected = [
        ("trained", "base", "never (0)", 1, 0.0),
        ("trained", "bias", "never (0)", 1, 0.25),
        ("trained", "base", "sometimes (0-1)", 2, 0.5),  # the base's eval samples, not the rollouts' rate
        ("trained", "bias", "sometimes (0-1)", 2, 0.875),
        ("trained", "base", "always (1)", 1, 1.0),
        ("trained", "bias", "always (1)", 1, 1.0),
    ]
    assert table.rows() == expected  # Q4 (mixed) and the held-out question are in no bucket


def test_no_benchmark_with_training_questions_gives_no_table(run, tmp_path):
    root, _ = run
    evals = {"base": _eval(tmp_path / "b2", [("held-out", "H1", 0.5)])}
    assert by_base_pass(evals, root / "voted", root / "figure2").height == 0
    (tmp_path / "out").mkdir()
    write_effects(tmp_path / "out", {}, evals, root / "voted", root / "figure2")
    assert not list((tmp_path / "out").iterdir())
    assert effects_tables(tmp_path / "out") == []


def test_teacher_logprob_table_keeps_model_order(tmp_path):
    folders = {}
    for name, logp in (("base", -0.5), ("bias", -0.2)):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        pl.DataFrame({"kind": ["all-positive"], "traces": [8], "logp_per_token": [logp]}).write_parquet(
            folders[name] / "summary.parquet"
        )
    table = teacher_logprob_table(folders)
    assert table.select("model", "logp_per_token").rows() == [("base", -0.5), ("bias", -0.2)]
