"""The embedded OpenR1-Math-220k-shaped sample: its layout, its awkward rows, and
``offcurate pipeline --format openr1-math`` on it without a network."""

import json
import sys

import polars as pl
import pyarrow.parquet as pq
import pytest
from gold_builders import OPENR1_SCHEMA

from offcurate.cli import main
from offcurate.data import GOLD_SAMPLE_DIR
from offcurate.data.make_gold_sample import UNREADABLE_GOLD, build_gold_sample, card

SHIPPED = GOLD_SAMPLE_DIR / "train-00000-of-00001.parquet"


@pytest.fixture(scope="module")
def table():
    return build_gold_sample()


def test_shipped_sample_equals_a_fresh_build(table):
    assert pq.read_table(SHIPPED).equals(table)
    assert (GOLD_SAMPLE_DIR / "README.md").read_text() == card(table)
    assert sorted(p.name for p in GOLD_SAMPLE_DIR.iterdir()) == ["README.md", SHIPPED.name]


def test_layout_is_the_dataset_cards(table):
    assert table.schema.equals(OPENR1_SCHEMA)


def test_the_awkward_rows_are_there(table):
    rows = table.to_pylist()
    generations = [r["generations"] for r in rows]
    assert any(None in g for g in generations)  # a list column with nulls
    assert any(t is not None and not t.strip() for g in generations for t in g)  # a blank trace
    assert any(len(g) == 1 for g in generations)  # a problem with one trace
    assert sum(r["answer"] is None for r in rows) >= 1  # problems without a gold
    assert [r["answer"] for r in rows].count(UNREADABLE_GOLD) == 1  # a gold math-verify cannot read
    assert any(len(r["correctness_math_verify"]) != len(r["generations"]) for r in rows)  # not lined up
    assert all(1 <= len(g) <= 4 for g in generations)


def _cli(*args: str) -> int:
    argv, sys.argv = sys.argv, ["offcurate", *args]
    try:
        with pytest.raises(SystemExit) as done:
            main()
    finally:
        sys.argv = argv
    return done.value.code


def test_pipeline_runs_offline_and_measures_its_pseudo_labels(tmp_path, capsys):
    out = tmp_path / "gold"
    assert _cli("pipeline", "--format", "openr1-math", "-o", str(out), "--workers", "2") == 0
    err = capsys.readouterr().err
    assert json.loads((out / "pipeline.json").read_text())["options"]["format"] == "openr1-math"
    questions = pl.read_parquet(out / "voted" / "questions" / "*.parquet")
    scored = questions["gold_agrees"].drop_nulls()
    accuracy = scored.mean()
    assert 0.5 < accuracy < 1  # a few traces per problem: some majorities are wrong
    line = next(line for line in err.splitlines() if "pseudo-label accuracy" in line)
    assert f"{accuracy:.3f}" in line
    assert set(questions["gold_status"]) == {"ok", "missing", "unreadable"}
    for name in ("gold_accuracy.parquet", "gold_accuracy_vs_vote_share.png", "verdict_disagreements.parquet"):
        assert (out / "stats" / name).is_file()
    manifest = json.loads((out / "raw" / "download.json").read_text())
    assert manifest["format"] == "openr1-math"


def test_pipeline_without_an_embedded_sample_of_the_format(tmp_path, capsys):
    assert _cli("pipeline", "--format", "deepmath", "-o", str(tmp_path / "x")) == 2
    assert "no embedded sample of --format deepmath" in capsys.readouterr().err
