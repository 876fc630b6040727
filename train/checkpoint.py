"""Checkpoints: the model in Hugging Face format plus everything needed to continue bit for bit.

    RUN/checkpoint-000100/  config.json, model.safetensors, tokenizer files   (from_pretrained-able)
                            trainer_state.pt: step, run length, data position, optimizer, scheduler,
                                              RNG states
    offcurate train ... -o RUN --resume                                         (continues from the newest)

A checkpoint is written to a hidden temporary folder and renamed into place, so a crash while saving never
leaves a folder that looks complete; only the newest ``keep_last`` checkpoints are kept. Resuming on the
same device reproduces the uninterrupted run exactly (tests/test_train_resume.py checks it on CPU).
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ..curate.io.errors import OffcurateError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

STATE_FILE = "trainer_state.pt"
_NAME = re.compile(r"^checkpoint-(\d{6,})$")


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    return run_dir / f"checkpoint-{step:06d}"


def list_checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints (with a trainer state) of a run, oldest first."""
    if not run_dir.is_dir():
        return []
    found = [p for p in run_dir.iterdir() if _NAME.match(p.name) and (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    data_state: dict[str, Any],
    total_steps: int,
    keep_last: int = 2,
) -> Path:
    """Write checkpoint-STEP atomically, then drop the oldest beyond ``keep_last`` (0 keeps all).

    ``total_steps`` is the run's length: the scheduler is a LambdaLR whose state does not hold the
    horizon of its cosine, so a resumed run rebuilds it from this number.
    """
    final = checkpoint_dir(run_dir, step)
    tmp = run_dir / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    state = {
        "step": step,
        "total_steps": total_steps,
        "data": data_state,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng_state(),
    }
    torch.save(state, tmp / STATE_FILE)
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)
    if keep_last > 0:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    return final


def load_state(path: Path) -> dict[str, Any]:
    """The trainer state of a checkpoint folder (tensors, numbers and strings only: weights_only)."""
    try:
        return torch.load(path / STATE_FILE, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError) as err:
        raise OffcurateError(f"{path / STATE_FILE}: unreadable checkpoint state ({err})") from None


def latest_checkpoint(run_dir: Path) -> Path:
    """The newest complete checkpoint, or a clear error saying there is nothing to resume."""
    found = list_checkpoints(run_dir)
    if not found:
        raise OffcurateError(f"{run_dir}: no checkpoint-*/ with {STATE_FILE} to resume from")
    return found[-1]
