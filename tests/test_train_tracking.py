"""`--report-to`: the metrics rows reach TensorBoard, wandb (offline) and trackio (local), on CPU.

    python -m pytest -q tests/test_train_tracking.py

TensorBoard is in the dev extra, so CI runs its test; wandb and trackio are optional packages: their test
runs where they are installed (pip install wandb trackio) and is skipped elsewhere.
"""

import json
import os
import subprocess
import sys

import pytest
from train_helpers import write_voted
from typer.testing import CliRunner

from offcurate.cli import app
from offcurate.curate.io.errors import OffcurateError
from offcurate.train.config import TrainConfig
from offcurate.train.engine import run_training
from offcurate.train.tracking import parse_report_to, tracker_name

OPTIONS = dict(
    model="tiny-random", device="cpu", lr=1e-2, warmup_steps=0, max_steps=3, questions_per_step=2,
    tokens_per_micro_batch=200, max_len=200, save_every=0,
)  # fmt: skip


@pytest.mark.parametrize(
    "value, expected",
    [
        ("none", ()),
        ("tensorboard", ("tensorboard",)),
        ("wandb, tensorboard,wandb", ("wandb", "tensorboard")),
        ("trackio,wandb,tensorboard", ("trackio", "wandb", "tensorboard")),
    ],
    ids=["none", "one", "spaces_and_duplicates", "all_three"],
)
def test_parse_report_to(value, expected):
    assert parse_report_to(value) == expected


@pytest.mark.parametrize("value", ["mlflow", "", "none,wandb"], ids=["unknown", "empty", "none_mixed"])
def test_parse_report_to_refuses(value):
    with pytest.raises(OffcurateError, match="--report-to .*expected none or a comma-separated subset"):
        parse_report_to(value)


def test_missing_tracker_package_is_one_line_before_the_run(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # what importlib sees when wandb is not installed
    voted = write_voted(tmp_path / "voted")
    out = tmp_path / "run"
    args = ["train", "-i", str(voted), "-o", str(out), "--model", "tiny-random", "--report-to", "wandb"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code != 0
    assert isinstance(result.exception, OffcurateError)
    assert str(result.exception) == "--report-to wandb needs the wandb package: pip install wandb"
    assert not out.exists()  # refused before the run folder was made


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_tensorboard_gets_every_row_and_resume_continues(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    voted = write_voted(tmp_path / "voted")
    run = tmp_path / "run"
    cfg = TrainConfig(input=voted, output=run, report_to=("tensorboard",), stop_after=2, **OPTIONS)
    run_training(cfg)
    cfg.stop_after, cfg.resume = None, True
    run_training(cfg)
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    rows = _metrics(run)
    assert [r["step"] for r in rows] == [1, 2, 3]
    for key in ("loss", "grad_norm", "lr", "tokens"):
        scalars = events.Scalars(f"train/{key}")
        assert [s.step for s in scalars] == [1, 2, 3], key
        assert [s.value for s in scalars] == pytest.approx([r[key] for r in rows], rel=1e-6), key
    assert "train/kl" not in events.Tags()["scalars"]  # None (no --beta) is not a number to plot


def test_wandb_offline_and_trackio_local_get_every_row(tmp_path):
    pytest.importorskip("wandb")
    pytest.importorskip("trackio")
    voted = write_voted(tmp_path / "voted")
    run = tmp_path / "run"
    env = {
        **os.environ,
        "WANDB_MODE": "offline",
        "WANDB_SILENT": "true",
        "WANDB_CONFIG_DIR": str(tmp_path / "wandb-config"),
        "WANDB_CACHE_DIR": str(tmp_path / "wandb-cache"),
        "TRACKIO_DIR": str(tmp_path / "trackio"),
        "TRACKIO_PROJECT": "offcurate-test",
    }
    flags = []
    for key, value in OPTIONS.items():
        flags += [f"--{key.replace('_', '-')}", str(value)]
    cmd = [sys.executable, "-m", "offcurate", "train", "-i", str(voted), "-o", str(run), *flags]
    result = subprocess.run(
        [*cmd, "--report-to", "wandb,trackio"], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = _metrics(run)

    run_id = (run / "wandb-run-id").read_text().strip()
    (record,) = (run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb")
    assert b"train/loss" in record.read_bytes() and b"train/grad_norm" in record.read_bytes()

    name = tracker_name(run, json.loads((run / "run.json").read_text())["run_id"])  # run-<id>
    dump = (
        "import json; from trackio.sqlite_storage import SQLiteStorage as S; "
        f"print(json.dumps(S.get_logs('offcurate-test', '{name}'), default=str))"
    )
    logs = json.loads(subprocess.run([sys.executable, "-c", dump], env=env, capture_output=True,
                                     text=True, timeout=120, check=True).stdout)  # fmt: skip
    assert [entry["step"] for entry in logs] == [1, 2, 3]
    assert [entry["train/loss"] for entry in logs] == pytest.approx([r["loss"] for r in rows])
