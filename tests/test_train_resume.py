"""Checkpoint + --resume continues bit for bit: 4 steps straight == 2 steps, stop, resume for 2 more (CPU).

Warmup 0 on purpose: every step's learning rate then comes from the cosine over the run's 4 steps, so a
resumed run that rebuilt its schedule with another horizon would show in the logged lr.
"""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import write_voted

from offcurate.curate.io.errors import OffcurateError
from offcurate.train.checkpoint import list_checkpoints
from offcurate.train.config import TrainConfig
from offcurate.train.engine import run_training
from offcurate.train.objective import ObjectiveConfig, lr_multiplier

TIMING = {"step_seconds", "tokens_per_s", "peak_memory_gib", "mfu"}


def _config(voted, out, **overrides):
    args = dict(
        input=voted,
        output=out,
        model="tiny-random",
        lr=1e-2,
        warmup_steps=0,
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


def _crashed_after_step_3(voted, straight, resumed):
    """What the straight run had on disk when it died during step 4: checkpoint 2 and the rows up to 3."""
    resumed.mkdir()
    for name in ("config.json", "tiny-random", "checkpoint-000002"):
        src = straight / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, resumed / name)
    lines = (straight / "metrics.jsonl").read_text().splitlines()
    (resumed / "metrics.jsonl").write_text("\n".join(lines[:3]) + "\n")  # a row past the checkpoint too


def _stopped_after_step_2(voted, straight, resumed):
    """A planned stop: the same run, told to end this invocation at step 2."""
    run_training(_config(voted, resumed, stop_after=2))
    assert [r["step"] for r in _rows(resumed / "metrics.jsonl")] == [1, 2]


@pytest.mark.parametrize(
    "interrupt, dtype",
    [(_crashed_after_step_3, "auto"), (_stopped_after_step_2, "auto"), (_crashed_after_step_3, "bf16")],
    ids=["crash", "stop_after", "crash_bf16_stochastic_rounding"],  # bf16: the rounding's RNG resumes too
)
def test_resume_is_bit_for_bit(tmp_path, interrupt, dtype):
    voted = write_voted(tmp_path / "voted")
    straight = tmp_path / "straight"
    run_training(_config(voted, straight, dtype=dtype))
    assert [p.name for p in list_checkpoints(straight)] == ["checkpoint-000002", "checkpoint-000004"]
    resumed = tmp_path / "resumed"
    interrupt(voted, straight, resumed)
    run_training(_config(voted, resumed, resume=True, dtype=dtype))

    a = load_file(straight / "final" / "model.safetensors")
    b = load_file(resumed / "final" / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(straight / "tiny-random" / "model.safetensors")
    assert not all(torch.equal(a[k], start[k]) for k in a)  # it did train
    rows = _rows(resumed / "metrics.jsonl")
    assert rows == _rows(straight / "metrics.jsonl")  # losses and lrs included, bit for bit
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    # the cosine over the run's 4 steps: 1, 0.854, 0.5, 0.146 (a 2-step horizon would give 1, 0.5, 0, 0)
    assert [r["lr"] for r in rows] == pytest.approx([1e-2 * lr_multiplier(k, 0, 4) for k in range(4)])
    assert rows[1]["lr"] == pytest.approx(1e-2 * 0.853553, rel=1e-5)


def test_run_length_is_fixed_and_stop_after_bounded(tmp_path):
    voted = write_voted(tmp_path / "voted")
    run = tmp_path / "run"
    run_training(_config(voted, run, stop_after=2))
    with pytest.raises(OffcurateError, match=r"--max-steps 4 -> 6 \(the run's length fixes its schedule"):
        run_training(_config(voted, run, max_steps=6, resume=True))
    with pytest.raises(OffcurateError, match="--stop-after 5 is past the run's last step 4"):
        run_training(_config(voted, run, stop_after=5, resume=True))
    with pytest.raises(OffcurateError, match="--stop-after 2: the run is already at step 2"):
        run_training(_config(voted, run, stop_after=2, resume=True))
    run_training(_config(voted, run, stop_after=3, resume=True))
    assert [r["step"] for r in _rows(run / "metrics.jsonl")] == [1, 2, 3]
    # the horizon in the checkpoint is the one the scheduler is rebuilt with: a mismatch is refused
    state_file = list_checkpoints(run)[-1] / "trainer_state.pt"
    state = torch.load(state_file, weights_only=True)
    assert state["total_steps"] == 4
    torch.save({**state, "total_steps": 10}, state_file)
    with pytest.raises(OffcurateError, match="belongs to a run of 10 steps, these options give 4"):
        run_training(_config(voted, run, resume=True))


def test_resume_refuses_changed_objective_and_missing_checkpoint(tmp_path):
    voted = write_voted(tmp_path / "voted")
    run = tmp_path / "run"
    run_training(_config(voted, run, max_steps=1, objective=ObjectiveConfig()))
    with pytest.raises(OffcurateError, match=r"--bias 0.5 -> 0.0"):
        run_training(_config(voted, run, max_steps=1, objective=ObjectiveConfig(bias=0.0), resume=True))
    clip = _config(voted, run, max_steps=1, grad_clip=0.5, objective=ObjectiveConfig(), resume=True)
    with pytest.raises(OffcurateError, match=r"--grad-clip 1.0 -> 0.5"):  # clipping changes every update
        run_training(clip)
    with pytest.raises(OffcurateError, match="--overwrite or --resume"):
        run_training(_config(voted, run, max_steps=1, objective=ObjectiveConfig()))
    with pytest.raises(OffcurateError, match="the output is the input folder"):
        run_training(_config(voted, voted, max_steps=1, overwrite=True))
    assert (voted / "trajectories").is_dir()
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("keep")
    with pytest.raises(OffcurateError, match="refusing to delete"):  # --overwrite only replaces a run
        run_training(_config(voted, other, max_steps=1, overwrite=True))
    assert (other / "notes.txt").read_text() == "keep"
    for checkpoint in list_checkpoints(run):
        shutil.rmtree(checkpoint)
    with pytest.raises(OffcurateError, match="no checkpoint"):
        run_training(_config(voted, run, max_steps=1, objective=ObjectiveConfig(), resume=True))


def test_resumes_a_checkpoint_written_before_the_dcp_shards(tmp_path):
    """Older checkpoints kept the optimizer inside trainer_state.pt and one RNG state: they still resume."""
    from offcurate.train.checkpoint import STATE_FILE
    from offcurate.train.data import open_voted
    from offcurate.train.distributed import Ranks
    from offcurate.train.model import resolve_precision
    from offcurate.train.session import setup

    voted = write_voted(tmp_path / "voted")
    straight, old = tmp_path / "straight", tmp_path / "old"
    run_training(_config(voted, straight))
    _crashed_after_step_3(voted, straight, old)
    cpu, ckpt = torch.device("cpu"), old / "checkpoint-000002"
    session = setup(
        _config(voted, old, resume=True), Ranks(), cpu, resolve_precision("auto", cpu), open_voted(voted)
    )
    state = torch.load(ckpt / STATE_FILE, weights_only=True)
    state["optimizer"], state["rng"] = session.optimizer.state_dict(), state["rng"][0]  # the old layout
    torch.save(state, ckpt / STATE_FILE)
    shutil.rmtree(ckpt / "sharded")

    run_training(_config(voted, old, resume=True))
    a, b = load_file(straight / "final" / "model.safetensors"), load_file(old / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _rows(old / "metrics.jsonl") == _rows(straight / "metrics.jsonl")
