"""``offcurate pipeline`` on the embedded sample: every stage reads the previous one's output."""

import json
import sys

import polars as pl
import pytest

from offcurate.cli import main
from offcurate.data import SAMPLE_DIR

pytestmark = pytest.mark.skipif(
    not list(SAMPLE_DIR.glob("*.parquet")), reason="embedded sample not generated"
)


@pytest.fixture
def run(sample_pipeline):
    return sample_pipeline


def test_stage_folders_and_cards(run):
    for stage in ("raw", "math", "voted", "stats"):
        assert (run / stage / "README.md").exists(), stage
    assert not [p for p in run.iterdir() if p.name.startswith(".")]  # no temporary folders left


def test_counts_chain_through(run):
    math = pl.read_parquet(run / "math" / "*.parquet")
    traces = pl.read_parquet(run / "voted" / "trajectories" / "*.parquet")
    questions = pl.read_parquet(run / "voted" / "questions" / "*.parquet")
    by_group = pl.read_parquet(run / "stats" / "by_group.parquet")
    assert math.height == traces.height == 48 * 16
    assert questions.height == 48 and questions["n_samples"].to_list() == [16] * 48
    overall = by_group.filter(pl.col("source") == "(all)").row(0, named=True)
    assert overall["questions"] == 48
    assert overall["all_positive"] == questions["all_positive"].sum() > 0
    assert sorted(p.name for p in (run / "stats").glob("*.png")) == [
        "all_positive_by_difficulty.png",
        "pass_rate_hist.png",
    ]


def test_existing_pipeline_output_needs_overwrite(run, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["offcurate", "pipeline", "-o", str(run)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "--overwrite" in capsys.readouterr().err


def test_an_interrupted_pipeline_resumes_and_keeps_its_finished_stages(run, tmp_path, monkeypatch, capsys):
    from offcurate.curate import vote

    out = tmp_path / "demo"

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(vote, "run_vote", interrupted)
        patch.setattr(sys, "argv", ["offcurate", "pipeline", "-o", str(out), "--workers", "2"])
        with pytest.raises(SystemExit) as exit_info:
            main()
    assert exit_info.value.code == 130  # what Typer makes of ^C
    assert sorted(p.name for p in out.iterdir()) == ["math", "pipeline.json", "raw"]
    assert json.loads((out / "pipeline.json").read_text())["complete"] is False
    kept = {stage: (out / stage / "README.md").stat().st_mtime_ns for stage in ("raw", "math")}

    monkeypatch.setattr(sys, "argv", ["offcurate", "pipeline", "-o", str(out), "--timeout", "3"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 2 and "other options (timeout=2.0)" in capsys.readouterr().err

    monkeypatch.setattr(sys, "argv", ["offcurate", "pipeline", "-o", str(out), "--workers", "1"])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0 and "kept (finished by an earlier run)" in capsys.readouterr().err
    assert {stage: (out / stage / "README.md").stat().st_mtime_ns for stage in ("raw", "math")} == kept
    assert json.loads((out / "pipeline.json").read_text())["complete"] is True
    for table in ("voted/trajectories/*.parquet", "voted/questions/*.parquet", "stats/buckets.parquet"):
        assert pl.read_parquet(out / table).equals(pl.read_parquet(run / table)), table
