"""Checkpoint + --resume continues bit for bit: 4 steps straight == 2 steps, stop, resume for 2 more (CPU)."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import write_voted

from offcurate.curate.errors import OffcurateError
from offcurate.train.checkpoint import list_checkpoints
from offcurate.train.config import TrainConfig
from offcurate.train.engine import run_training
from offcurate.train.objective import ObjectiveConfig

TIMING = {"step_seconds", "tokens_per_s", "peak_memory_gib", "mfu"}


def _config(voted, out, **overrides):
    args = dict(
        input=voted,
        output=out,
        model="tiny-random",
        lr=1e-2,
        warmup_steps=1,
        max_steps=4,
        questions_per_step=2,
        tokens_per_micro_batch=160,  # several micro-batches per step: accumulation is part of the check
        max_len=160,
        save_every=2,
        keep_last=0,
        device="cpu",
        objective=ObjectiveConfig(beta=0.05),  # the reference model is part of the check too
    )
    args.update(overrides)
    return TrainConfig(**args)


def _rows(path):
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in path.open()]


def test_resume_is_bit_for_bit(tmp_path):
    voted = write_voted(tmp_path / "voted")
    straight = tmp_path / "straight"
    run_training(_config(voted, straight))
    assert [p.name for p in list_checkpoints(straight)] == ["checkpoint-000002", "checkpoint-000004"]

    # the interrupted run: what the straight run had on disk after step 2
    resumed = tmp_path / "resumed"
    resumed.mkdir()
    for name in ("config.json", "tiny-random", "checkpoint-000002"):
        src = straight / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, resumed / name)
    lines = (straight / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")  # a row past the checkpoint too
    run_training(_config(voted, resumed, resume=True))

    a = load_file(straight / "final" / "model.safetensors")
    b = load_file(resumed / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(straight / "tiny-random" / "model.safetensors")
    assert not all(torch.equal(a[k], start[k]) for k in a)  # it did train
    assert _rows(resumed / "metrics.jsonl") == _rows(straight / "metrics.jsonl")
    assert [r["step"] for r in _rows(resumed / "metrics.jsonl")] == [1, 2, 3, 4]


def test_resume_refuses_changed_objective_and_missing_checkpoint(tmp_path):
    voted = write_voted(tmp_path / "voted")
    run = tmp_path / "run"
    run_training(_config(voted, run, max_steps=1, objective=ObjectiveConfig()))
    with pytest.raises(OffcurateError, match=r"--bias 0.5 -> 0.0"):
        run_training(_config(voted, run, max_steps=2, objective=ObjectiveConfig(bias=0.0), resume=True))
    with pytest.raises(OffcurateError, match="--overwrite or --resume"):
        run_training(_config(voted, run, max_steps=1, objective=ObjectiveConfig()))
    with pytest.raises(OffcurateError, match="refusing to delete"):  # --overwrite only replaces a run
        run_training(_config(voted, voted, max_steps=1, overwrite=True))
    assert (voted / "trajectories").is_dir()
    for checkpoint in list_checkpoints(run):
        shutil.rmtree(checkpoint)
    with pytest.raises(OffcurateError, match="no checkpoint"):
        run_training(_config(voted, run, max_steps=2, objective=ObjectiveConfig(), resume=True))
