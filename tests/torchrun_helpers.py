"""Launching ``offcurate train`` under torchrun on CPU ranks, and its one-process reference runs.

Imported as ``torchrun_helpers`` by tests/test_train_distributed.py and tests/test_train_ulysses.py.
Runs go through ``python -m torch.distributed.run --standalone`` in a subprocess with a timeout, so a
hung rank fails the test instead of the CI job.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from safetensors.torch import load_file

from offcurate.train.config import TrainConfig
from offcurate.train.engine import run_training
from offcurate.train.objective import ObjectiveConfig

TIMEOUT = 240  # seconds for one 2-rank run on a busy 2-core CI machine (~15 s when quiet)
TIMING = {"step_seconds", "tokens_per_s", "peak_memory_gib", "mfu"}
SAME = ("step", "epoch", "questions", "trajectories", "micro_batches", "tokens", "loss_tokens", "lr")
OPTIONS = dict(
    lr=1e-2, warmup_steps=0, max_steps=3, questions_per_step=2, tokens_per_micro_batch=200, max_len=200,
    save_every=2, keep_last=0,
)  # fmt: skip


def assert_steps_close(a: list[dict], b: list[dict]) -> None:
    """Two runs' metrics rows agree step by step: the bookkeeping exactly, the numbers within 1e-5.

    ``kl`` is None in both without a reference model (pytest 9 refuses ``approx(None, rel=...)``).
    """
    for x, y in zip(a, b):
        assert {k: x[k] for k in SAME} == {k: y[k] for k in SAME}
        for key in ("loss", "grad_norm", "mean_token_prob", "kl"):
            if x[key] is None:
                assert y[key] is None, (y["step"], key)
            else:
                assert y[key] == pytest.approx(x[key], rel=1e-5, abs=1e-7), (y["step"], key)


def assert_weights_close(a: dict, b: dict, start: dict, share: float = 1e-3) -> None:
    """Two runs' weights agree within ``share`` of how far training moved them, and every tensor moved.

    Adam divides each gradient by its running scale, so a last-bit difference in a gradient near Adam's
    eps becomes an update difference of up to ~1e-3 of the step (lr 1e-2 here): measured 1.4e-5 after
    3 steps that moved the weights by 2e-2 (an absolute 1e-5 was one platform's rounding away from
    failing). A wrong all-to-all or a missing shard is off by far more: log-probs 0.1 off, weights 1e-2.
    """
    assert a.keys() == b.keys()
    moved = {k: (a[k] - start[k]).abs().max().item() for k in a if k in start}
    assert min(moved.values()) > 1e-3  # every tensor trained
    assert max((a[k] - b[k]).abs().max().item() for k in a) < share * max(moved.values())


def flags(**options) -> list[str]:
    out = []
    for key, value in options.items():
        out += [f"--{key.replace('_', '-')}", str(value)]
    return out


def native_crash(stderr: str) -> str | None:
    """The report of a rank killed by SIGSEGV or SIGBUS (the rank's stack, torchrun's summary), or None.

    offcurate has no native code of its own, and its errors and wrong results never end this way."""
    if not any(f"({name})" in stderr for name in ("SIGSEGV", "SIGBUS")):
        return None
    start = stderr.find("Fatal Python error")  # faulthandler's stacks, then torchrun's summary
    return stderr[start : start + 6000] if start >= 0 else stderr[-6000:]


def torchrun(tmp_path, voted, out, *extra, script=None, nproc: int = 2) -> subprocess.CompletedProcess:
    """Run ``offcurate train`` (or ``script``) under torchrun; a native crash of a rank is run once more.

    CI once saw rank 1 of the plain 2-rank fp32 run die of SIGSEGV, with no Python error, after many clean
    runs of the same launch (and none in a loop of 60 here): torch's gloo on CPU has such rare crashes, and
    pytorch's own CI reruns them. The ranks run with faulthandler on, so the crash's Python stack is kept; a
    crash is reported as a warning with that stack, the output folder is put back as it was, and the
    command runs once more. A second crash, or any other failure, is the result the test sees."""
    entry = [str(script)] if script else ["-m", "offcurate"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
    cmd += [*entry, "train", "-i", str(voted), "-o", str(out), "--model", "tiny-random", "--device", "cpu"]
    cmd += flags(**OPTIONS) + list(extra)
    env = {**os.environ, "PYTHONFAULTHANDLER": "1"}
    before = Path(tmp_path) / f".before-{Path(out).name}"  # what a --resume starts from, for the rerun
    if Path(out).exists():
        shutil.copytree(out, before, symlinks=True, dirs_exist_ok=False)
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    crash = native_crash(result.stderr) if result.returncode else None
    if crash is not None:
        warnings.warn(f"a rank crashed in native code; running the command again:\n{crash}", stacklevel=2)
        shutil.rmtree(out, ignore_errors=True)
        if before.exists():
            shutil.copytree(before, out, symlinks=True)
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT)
    shutil.rmtree(before, ignore_errors=True)
    return result


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def one_process(voted, out, **overrides) -> None:
    objective = overrides.pop("objective", ObjectiveConfig())
    cfg = TrainConfig(input=voted, output=out, model="tiny-random", device="cpu", objective=objective)
    for key, value in {**OPTIONS, **overrides}.items():
        setattr(cfg, key, value)
    run_training(cfg)


def rows(run) -> list[dict]:
    """metrics.jsonl without the timing columns."""
    lines = (run / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def weights(run, folder="final"):
    return load_file(run / folder / "model.safetensors")


def assert_lora_matches_one_process(tmp_path, voted, *extra: str) -> None:
    """A 2-rank LoRA run (with ``extra`` options) against one process: losses, gradient norms, adapters."""
    two, one = tmp_path / "two", tmp_path / "one"
    ok(torchrun(tmp_path, voted, two, "--lora-r", "4", *extra))
    one_process(voted, one, lora_r=4)
    for x, y in zip(rows(one), rows(two)):
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-5)
        assert y["grad_norm"] == pytest.approx(x["grad_norm"], rel=1e-5)
    a, b = (load_file(run / "final" / "adapter_model.safetensors") for run in (one, two))
    assert a.keys() == b.keys() and len(a) == 28
    assert max((a[k] - b[k]).abs().max().item() for k in a) < 1e-5
