"""End to end on CPU: `offcurate pipeline` on the embedded sample, then `offcurate train` with a tiny model.

Checks that train reads what vote wrote, the loss moves, and a checkpoint resumes where it stopped.
"""

import json
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.cli import main  # noqa: E402
from offcurate.data import SAMPLE_DIR  # noqa: E402

pytestmark = pytest.mark.skipif(
    not list(SAMPLE_DIR.glob("*.parquet")), reason="embedded sample not generated"
)
SMALL = ["--max-len", "2048", "--tokens-per-micro-batch", "4096", "--questions-per-step", "2", "--lr", "1e-3"]
SMALL += [
    "--warmup-steps",
    "0",
    "--max-steps",
    "4",
    "--save-every",
    "2",
]  # warmup 0: every lr is the cosine's


def cli(monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["offcurate", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_pipeline_then_train_then_resume(tmp_path, monkeypatch):
    assert cli(monkeypatch, "pipeline", "-o", str(tmp_path / "demo"), "--workers", "1") == 0
    run = tmp_path / "train"
    common = ["-i", str(tmp_path / "demo" / "voted"), "-o", str(run), "--model", "tiny-random", *SMALL]
    assert cli(monkeypatch, "train", *common) == 0
    rows = metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    assert all(r["trajectories"] > 0 and r["tokens"] > 0 for r in rows)
    losses = [r["loss"] for r in rows]
    assert len(set(losses)) > 1  # the loss moves
    assert (run / "final" / "config.json").exists()

    # Stop after step 2, resume: the same losses and learning rates as the straight run, bit for bit.
    resumed = tmp_path / "resumed"
    common[3] = str(resumed)
    assert cli(monkeypatch, "train", *common, "--stop-after", "2") == 0
    assert cli(monkeypatch, "train", *common, "--resume") == 0
    again = metrics(resumed)
    assert [(r["loss"], r["lr"]) for r in again] == [(r["loss"], r["lr"]) for r in rows]
    assert len({r["lr"] for r in rows}) == 4  # warmup 0: the cosine moves at every step
