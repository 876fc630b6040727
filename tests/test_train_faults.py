"""`offcurate train` under bad options, damaged run folders and faults (issue 22): one line, exit 2, nothing
lost, nothing half-written, and the same command works once the cause is gone.

    python -m pytest -q tests/test_train_faults.py

Each case runs the real command in-process (``cli.main``) on a hand-built vote output and the tiny random
model, a few steps on CPU. Faults are injected at a seam (a writer that raises "No space left on device"
after writing half a file); ``test_a_real_full_disk`` does the same on a small tmpfs where the tests may
mount one (root in a container). The 2-rank cases live in tests/test_train_faults_torchrun.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import write_voted

from offcurate.cli import main

SMALL = [
    "--model", "tiny-random", "--device", "cpu", "--max-len", "512", "--tokens-per-micro-batch", "512",
    "--questions-per-step", "2", "--warmup-steps", "0", "--lr", "1e-2", "--save-every", "1",
    "--keep-last", "0",
]  # fmt: skip


def train(monkeypatch, capsys, *args: str) -> tuple[int, str]:
    """``offcurate train ARGS`` in-process: (exit code, stderr)."""
    monkeypatch.setattr(sys, "argv", ["offcurate", "train", *map(str, args)])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, capsys.readouterr().err


def one_line(err: str) -> str:
    """The error line of a failed command: said once, on one line, with no traceback (the other lines
    are the plain progress lines said without a terminal)."""
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in err, err
    said = [line for line in err.splitlines() if line.strip()]
    assert all(line.startswith(("train  ", "error:", "warning:")) for line in said), err
    return errors[0]


def listing(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def hidden(folder: Path) -> list[str]:
    """Hidden entries of ``folder`` and its subfolders one level down: a ``.checkpoint-N.tmp`` left in
    the run, a ``.run.lock`` or ``.run.tmp-PID`` beside it."""
    return sorted(p.name for p in [*folder.glob(".*"), *folder.glob("*/.*")] if p.name != ".metadata")


@pytest.fixture(scope="module")
def voted(tmp_path_factory) -> Path:
    return write_voted(tmp_path_factory.mktemp("data") / "voted")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, voted) -> Path:
    """A finished 3-step run (checkpoints 1-3, final/), never changed: tests copy it first."""
    run = tmp_path_factory.mktemp("finished") / "run"
    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(
            sys, "argv", ["offcurate", "train", "-i", str(voted), "-o", str(run), *SMALL, "--max-steps", "3"]
        )
        with pytest.raises(SystemExit) as info:
            main()
        assert info.value.code == 0
    finally:
        mp.undo()
    return run


def copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to, copy_function=shutil.copy2)
    return to


# --- no data lost -----------------------------------------------------------------------------------------


def test_output_holding_the_start_model_is_refused(tmp_path, monkeypatch, capsys, voted, finished):
    """`--model RUN/final -o RUN --overwrite` (continue from a finished run) deleted the whole run."""
    run = copy(finished, tmp_path / "run")
    before = listing(run)
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL[2:], "--model", run / "final",
                      "--max-steps", "2", "--overwrite")  # fmt: skip
    assert code == 2 and "inside the output folder" in one_line(err)
    assert listing(run) == before


@pytest.mark.parametrize("where", ["equal", "inside"])
def test_output_equal_to_or_inside_the_start_model_is_refused(
    tmp_path, monkeypatch, capsys, voted, finished, where
):
    model = copy(finished / "final", tmp_path / "model")
    before = listing(model)
    out = model if where == "equal" else model / "run"
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", out, *SMALL[2:], "--model", model,
                      "--max-steps", "2", "--overwrite")  # fmt: skip
    assert code == 2 and ("is the input folder" in err or "inside the input" in err), err
    one_line(err)
    assert listing(model) == before


def test_overwrite_refuses_a_model_folder(tmp_path, monkeypatch, capsys, voted, finished):
    """A Hugging Face model folder has a config.json too: only a folder train made (run.json) is a run."""
    model = copy(finished / "final", tmp_path / "final-merged")
    before = listing(model)
    code, err = train(
        monkeypatch, capsys, "-i", voted, "-o", model, *SMALL, "--max-steps", "2", "--overwrite"
    )
    assert code == 2 and "not an offcurate train run folder" in one_line(err)
    assert listing(model) == before


def test_overwrite_still_replaces_an_earlier_run(tmp_path, monkeypatch, capsys, voted, finished):
    run = copy(finished, tmp_path / "run")
    old_id = json.loads((run / "run.json").read_text())["run_id"]
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "1", "--overwrite")
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["run_id"] != old_id  # a new run, a new identity
    assert not (run / "checkpoint-000003").exists()


def test_refused_resume_leaves_the_run_as_it_was(tmp_path, monkeypatch, capsys, voted, finished):
    """--resume with another -i is refused (the data changed) and must not rewrite config.json."""
    run = copy(finished, tmp_path / "run")
    (run / "final").rename(tmp_path / "final")  # make it resumable: pretend it stopped at step 3 of 4
    other = write_voted(tmp_path / "other", n_shards=1)
    before = listing(run)
    code, err = train(monkeypatch, capsys, "-i", other, "-o", run, *SMALL, "--max-steps", "3", "--resume")
    assert code == 2 and "the input changed" in one_line(err)
    assert listing(run) == before


def test_resume_of_a_finished_run_changes_nothing(tmp_path, monkeypatch, capsys, voted, finished):
    run = copy(finished, tmp_path / "run")
    before = listing(run)
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "3", "--resume")
    assert code == 0, err
    assert "the run is finished (step 3 of 3); nothing to resume" in err
    assert listing(run) == before  # summary.json above all: it keeps the whole run's numbers
    assert json.loads((run / "summary.json").read_text())["counts"]["steps this run"] == 3


def test_summary_after_a_resume_covers_the_whole_run(tmp_path, monkeypatch, capsys, voted, finished):
    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "3"]
    assert train(monkeypatch, capsys, *args, "--stop-after", "1")[0] == 0
    assert train(monkeypatch, capsys, *args, "--resume")[0] == 0
    resumed = json.loads((run / "summary.json").read_text())["counts"]
    straight = json.loads((finished / "summary.json").read_text())["counts"]
    assert resumed["steps"] == 3 and resumed["steps this run"] == 2
    for key in ("questions trained", "trajectories trained", "tokens", "loss first step", "loss last step"):
        assert resumed[key] == pytest.approx(straight[key]), key


# --- every float option checked before anything runs ------------------------------------------------------

BAD_FLOATS = {
    "bias_nan": (["--bias", "nan"], "--bias nan"),
    "bias_inf": (["--bias", "inf"], "--bias inf"),
    "beta_nan": (["--beta", "nan"], "--beta nan"),
    "eps_nan": (["--eps", "nan"], "--eps nan"),
    "gamma_inf": (["--shaping", "luffy", "--gamma", "inf"], "--gamma inf"),
    "lr_inf": (["--lr", "inf"], "--lr must be in (0, 1]"),
    "lr_nan": (["--lr", "nan"], "--lr must be in (0, 1]"),
    "lr_1e300": (["--lr", "1e300"], "--lr must be in (0, 1]"),
    "weight_decay_inf": (["--weight-decay", "inf"], "--weight-decay must be >= 0"),
    "grad_clip_inf": (["--grad-clip", "inf"], "--grad-clip must be >= 0"),
    "lora_alpha_inf": (["--lora-r", "4", "--lora-alpha", "inf"], "--lora-alpha must be > 0"),
}


@pytest.mark.parametrize("args, message", list(BAD_FLOATS.values()), ids=list(BAD_FLOATS))
def test_a_bad_float_option_is_one_line_before_anything_runs(
    tmp_path, monkeypatch, capsys, voted, args, message
):
    """`--bias nan`, `--lr inf`, `--lora-alpha inf` trained a NaN model and exited 0; `--lr 1e300` was a
    traceback; `--beta nan` acted as 0."""
    code, err = train(
        monkeypatch, capsys, "-i", voted, "-o", tmp_path / "run", *SMALL, "--max-steps", "2", *args
    )
    assert code == 2 and message in one_line(err)
    assert not (tmp_path / "run").exists()


def _poison_step(monkeypatch, at: int) -> None:
    """The ``at``-th step's weights turn NaN before its forward pass (a diverged run, as --lr 10 gives)."""
    from offcurate.train import engine

    real, calls = engine.accumulate, []

    def poisoned(policy, *args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            with torch.no_grad():
                for p in policy.parameters():
                    p.fill_(float("nan"))
        return real(policy, *args, **kwargs)

    monkeypatch.setattr(engine, "accumulate", poisoned)


def test_a_non_finite_step_stops_the_run_keeping_the_last_good_checkpoint(
    tmp_path, monkeypatch, capsys, voted
):
    _poison_step(monkeypatch, at=3)
    run = tmp_path / "run"
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "4")
    line = one_line(err)
    assert code == 2
    assert "step 3: the loss is nan" in line and "checkpoint-000002 is the last good checkpoint" in line
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-000001", "checkpoint-000002"]
    assert not (run / "final").exists() and hidden(run) == []
    weights = load_file(run / "checkpoint-000002" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())
    assert [json.loads(x)["step"] for x in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_a_first_step_that_diverges_leaves_no_folder(tmp_path, monkeypatch, capsys, voted):
    _poison_step(monkeypatch, at=1)
    run = tmp_path / "run"
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "2")
    assert code == 2 and "step 1: the loss is nan" in one_line(err)
    assert not run.exists()


# --- a full disk: one line, exit 2, nothing half-written, the same command works afterwards --------------


def _no_space(path: Path) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))


def _full_disk_in_hf_write(monkeypatch, at: int) -> None:
    """The ``at``-th checkpoint's Hugging Face files: half of model.safetensors, then a full disk."""
    from offcurate.train import checkpoint

    calls = []

    def half_then_full(folder, *args, **kwargs):
        calls.append(1)
        if len(calls) == at:
            (folder / "model.safetensors").write_bytes(b"\0" * 1000)
            raise _no_space(folder / "model.safetensors")
        return real(folder, *args, **kwargs)

    real = checkpoint._write_hf
    monkeypatch.setattr(checkpoint, "_write_hf", half_then_full)


def test_a_full_disk_at_the_first_checkpoint(tmp_path, monkeypatch, capsys, voted):
    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "2"]
    with monkeypatch.context() as m:
        _full_disk_in_hf_write(m, at=1)
        code, err = train(m, capsys, *args)
    assert (
        code == 2
        and "No space left on device" in one_line(err)
        and "checkpoint-000001 was not written" in err
    )
    assert not run.exists() and hidden(tmp_path) == []  # no .checkpoint-000001.tmp filling the disk
    code, err = train(monkeypatch, capsys, *args)  # space freed: the same command
    assert code == 0, err


def test_a_full_disk_at_a_later_checkpoint_keeps_the_earlier_one(
    tmp_path, monkeypatch, capsys, voted, finished
):
    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "3"]
    with monkeypatch.context() as m:
        _full_disk_in_hf_write(m, at=2)
        code, err = train(m, capsys, *args)
    assert code == 2 and "No space left on device" in one_line(err) and "--resume" in err
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-000001"] and hidden(run) == []
    assert train(monkeypatch, capsys, *args, "--resume")[0] == 0
    a, b = load_file(finished / "final" / "model.safetensors"), load_file(run / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # as if nothing had happened


def test_a_full_disk_while_building_tiny_random(tmp_path, monkeypatch, capsys, voted):
    """The run's config.json stayed behind, so the same command was then refused ("pass --overwrite")."""
    from transformers import PreTrainedTokenizerBase

    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "1"]
    with monkeypatch.context() as m:
        m.setattr(
            PreTrainedTokenizerBase,
            "save_pretrained",
            lambda self, folder, **k: (_ for _ in ()).throw(_no_space(Path(folder) / "tokenizer.json")),
        )
        code, err = train(m, capsys, *args)
    assert code == 2 and "No space left on device" in one_line(err)
    assert not run.exists() and hidden(tmp_path) == []
    assert train(monkeypatch, capsys, *args)[0] == 0


@pytest.mark.parametrize("free_kb, when", [(1200, "checkpoint"), (150, "tiny_random")])
def test_a_real_full_disk(tmp_path, monkeypatch, capsys, voted, free_kb, when):
    """A tmpfs with ``free_kb`` left: the first checkpoint (~2 MB) or tiny-random (~0.5 MB) does not fit.
    Needs mount rights (root in a container); the injected faults above run everywhere."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * (4096 * 1024 - free_kb * 1024))
        args = ["-i", voted, "-o", disk / "run", *SMALL, "--max-steps", "1"]
        code, err = train(monkeypatch, capsys, *args)
        assert code == 2 and "No space left on device" in one_line(err)
        assert sorted(p.name for p in disk.iterdir()) == ["filler"]  # nothing half-written, no lock
        filler.unlink()
        code, err = train(monkeypatch, capsys, *args)
        assert code == 0, err
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)  # lazy: a loaded model may map a file


# --- damaged checkpoints and run folders ------------------------------------------------------------------


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


DAMAGE = {
    "truncated_distcp": (
        lambda c: _truncate(c / "sharded" / "__0_0.distcp"),
        "sharded/__0_0.distcp is truncated",
    ),
    "missing_metadata": (lambda c: (c / "sharded" / ".metadata").unlink(), "sharded/.metadata is missing"),
    "truncated_safetensors": (lambda c: _truncate(c / "model.safetensors"), "model.safetensors is truncated"),
    "truncated_trainer_state": (
        lambda c: _truncate(c / "trainer_state.pt"),
        "trainer_state.pt is unreadable",
    ),
}


@pytest.mark.parametrize("damage, why", list(DAMAGE.values()), ids=list(DAMAGE))
def test_resume_skips_a_damaged_checkpoint_with_a_warning(
    tmp_path, monkeypatch, capsys, voted, finished, damage, why
):
    run = copy(finished, tmp_path / "run")
    shutil.rmtree(run / "final")
    (run / "summary.json").unlink()
    (run / "checkpoint-000003").rename(tmp_path / "gone")  # the run stopped after step 2 ...
    damage(run / "checkpoint-000002")  # ... and its last checkpoint was cut short
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "3", "--resume")
    assert code == 0, err
    warning = next(line for line in err.splitlines() if line.startswith("warning:"))
    assert warning.startswith(f"warning: skipped checkpoint-000002: {why}")
    assert warning.endswith("; resuming from checkpoint-000001")
    a, b = load_file(finished / "final" / "model.safetensors"), load_file(run / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # steps 2 and 3 redone, bit for bit


@pytest.mark.parametrize("damage, why", list(DAMAGE.values())[:3], ids=list(DAMAGE)[:3])
def test_no_intact_checkpoint_is_one_line(tmp_path, monkeypatch, capsys, voted, finished, damage, why):
    run = copy(finished, tmp_path / "run")
    for name in ("checkpoint-000002", "checkpoint-000003"):
        shutil.rmtree(run / name)
    damage(run / "checkpoint-000001")
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "3", "--resume")
    assert code == 2 and f"no intact checkpoint to resume from (checkpoint-000001: {why}" in one_line(err)


def test_an_empty_run_config_is_one_line(tmp_path, monkeypatch, capsys, voted, finished):
    run = copy(finished, tmp_path / "run")
    (run / "config.json").write_text("")
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", run, *SMALL, "--max-steps", "3", "--resume")
    assert code == 2 and f"{run / 'config.json'}: empty" in one_line(err)


def test_a_truncated_start_model_is_one_line(tmp_path, monkeypatch, capsys, voted, finished):
    model = copy(finished / "final", tmp_path / "model")
    _truncate(model / "model.safetensors")
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", tmp_path / "run", *SMALL[2:], "--model", model,
                      "--max-steps", "1")  # fmt: skip
    assert code == 2 and "model.safetensors is truncated" in one_line(err)
    assert not (tmp_path / "run").exists()


# --- a run stopped early, a missing model -----------------------------------------------------------------


def test_stop_after_is_not_a_finished_run(tmp_path, monkeypatch, capsys, voted):
    """`--stop-after 2` of a 3-step run showed "step 2/2" and wrote final/ as if the run were done."""
    monkeypatch.setenv("OFFCURATE_PROGRESS_SECONDS", "0")
    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "3"]
    code, err = train(monkeypatch, capsys, *args, "--stop-after", "2")
    assert code == 0, err
    assert "train  2/3 (67%)" in err and "2/2" not in err
    assert not (run / "final").exists()  # final/ is the finished run's model
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] is False and summary["total_steps"] == 3
    assert summary["counts"]["stopped early"].startswith("at step 2 of 3")
    code, err = train(monkeypatch, capsys, *args, "--resume")
    assert code == 0, err
    assert (run / "final" / "model.safetensors").exists()
    assert json.loads((run / "summary.json").read_text())["finished"] is True


@pytest.mark.parametrize("model", ["/nonexistent/path", "./missing-model", "runs/x/final"])
def test_a_model_path_that_does_not_exist_is_no_such_folder(tmp_path, monkeypatch, capsys, voted, model):
    monkeypatch.chdir(tmp_path)
    code, err = train(monkeypatch, capsys, "-i", voted, "-o", "run", *SMALL[2:], "--model", model)
    assert code == 2 and one_line(err) == f"error: --model {model}: no such folder"
    assert not (tmp_path / "run").exists()


# --- experiment trackers ----------------------------------------------------------------------------------


def test_a_fresh_run_is_a_fresh_tracker_run(tmp_path, monkeypatch, capsys, voted):
    """A new run in a folder named like an older one appended to the older one's trackio metrics: the
    tracker run is named by the run's identity (run.json), which --overwrite renews and --resume keeps."""
    from offcurate.train.tracking import tracker_name

    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "2"]
    names = []
    for extra in (["--stop-after", "1"], ["--resume"], ["--overwrite"]):
        assert train(monkeypatch, capsys, *args, *extra)[0] == 0
        names.append(tracker_name(run, json.loads((run / "run.json").read_text())["run_id"]))
    assert names[0] == names[1] != names[2]
    assert all(name.startswith("run-") for name in names)


def test_trackio_gets_a_new_run_for_a_new_run_in_the_same_folder(tmp_path, monkeypatch, capsys, voted):
    monkeypatch.setenv("TRACKIO_DIR", str(tmp_path / "trackio"))  # read when trackio is first imported
    trackio = pytest.importorskip("trackio.sqlite_storage")
    project = f"faults-{tmp_path.name}"
    monkeypatch.setenv("TRACKIO_PROJECT", project)
    run = tmp_path / "run"
    args = ["-i", voted, "-o", run, *SMALL, "--max-steps", "2", "--report-to", "trackio"]
    assert train(monkeypatch, capsys, *args)[0] == 0
    assert train(monkeypatch, capsys, *args, "--overwrite")[0] == 0
    storage = trackio.SQLiteStorage
    runs = {name: [e["step"] for e in storage.get_logs(project, name)] for name in storage.get_runs(project)}
    assert len(runs) == 2 and all(steps == [1, 2] for steps in runs.values()), runs


def test_wandb_without_a_key_is_one_line_before_the_run(tmp_path, monkeypatch, capsys, voted):
    """No API key and no WANDB_MODE: wandb failed with a 204-line traceback once the model had loaded."""
    from offcurate.train import engine

    monkeypatch.setattr(engine, "check_installed", lambda names: None)  # wandb need not be installed
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "netrc").write_text("")
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    monkeypatch.setenv("HOME", str(tmp_path))
    code, err = train(
        monkeypatch, capsys, "-i", voted, "-o", tmp_path / "run", *SMALL, "--report-to", "wandb"
    )
    line = one_line(err)
    assert code == 2 and "wandb login" in line and "WANDB_MODE=offline" in line
    assert not (tmp_path / "run").exists()
