"""Checkpoints: the model in Hugging Face format plus everything needed to continue bit for bit.

    RUN/checkpoint-000100/  config.json, model.safetensors, tokenizer files   (from_pretrained-able)
                            sharded/: model + optimizer (torch.distributed.checkpoint, one file per rank)
                            trainer_state.pt: step, run length, data position, scheduler, RNG of each rank
    RUN/final/              the last checkpoint's Hugging Face files, hard-linked (``publish_hf_folder``)
    offcurate train ... -o RUN --resume                                         (continues from the newest)

The model and optimizer go through ``torch.distributed.checkpoint`` (DCP): every rank writes its own
shards, nobody gathers the optimizer, and a checkpoint loads on any number of ranks (DCP reshards on
load), so a run started on 8 GPUs can continue on 1. The Hugging Face folder beside it is written by rank
0 from the gathered full state dict. A checkpoint is written to a hidden temporary folder and renamed into
place, so a crash while saving never leaves a folder that looks complete; only the newest ``keep_last``
checkpoints are kept. Resuming on the same device and world size reproduces the uninterrupted run exactly
(tests/test_train_resume.py, tests/test_train_distributed.py check it on CPU).
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist

from ..curate.io.errors import OffcurateError
from ..curate.io.output import WRITE_FAILURES, atomic_output, is_write_failure
from .distributed import Ranks, agree, barrier, on_rank0
from .integrity import dcp_problem, json_problem, weights_problem
from .lora import absolute_base, adapter_state, is_lora

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

STATE_FILE = "trainer_state.pt"
FINAL = "final"  # RUN/final/: the last checkpoint's Hugging Face files
SHARDED = "sharded"
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


def gather_rng_states(ranks: Ranks) -> list[dict[str, Any]]:
    """The RNG state of every rank, in rank order (a list of one without torchrun)."""
    if not ranks.sharded:
        return [rng_state()]
    states: list[Any] = [None] * ranks.world
    dist.all_gather_object(states, rng_state())
    return states


def set_rng_state(states: list[dict[str, Any]] | dict[str, Any], rank: int = 0) -> None:
    """This rank's saved RNG state; a rank the checkpoint did not have keeps its seeded state."""
    if isinstance(states, dict):  # written by one process before checkpoints held every rank's
        states = [states]
    if rank >= len(states):
        return
    state = states[rank]
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _state_options(policy: torch.nn.Module, **options: bool):
    """DCP state-dict options; a LoRA run leaves its frozen base out of checkpoints and gathers: a resume
    reloads the base from the start model, so saving it again (14 GB at 7B, per save) buys nothing."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions

    frozen = any(not p.requires_grad for p in policy.parameters())
    return StateDictOptions(ignore_frozen_params=frozen, **options)


def full_model_state(policy: torch.nn.Module, ranks: Ranks) -> dict[str, torch.Tensor] | None:
    """The Hugging Face state dict of a sharded ``PackedPolicy``, gathered on rank 0 (CPU); None unsharded.

    Every rank must call it (the gather is collective); only rank 0 gets the tensors.
    """
    if not ranks.sharded:
        return None
    from torch.distributed.checkpoint.state_dict import get_model_state_dict

    full = get_model_state_dict(
        policy, options=_state_options(policy, full_state_dict=True, cpu_offload=True)
    )
    # a tied head is the embedding under a second name: save_pretrained writes it once
    names = {n for n, _ in policy.named_parameters(remove_duplicate=False)}
    tied = names - dict(policy.named_parameters()).keys()
    return {k.removeprefix("model."): v for k, v in full.items() if k not in tied}


def _write_hf(folder: Path, model: PreTrainedModel, tokenizer, state: dict | None) -> None:
    """A transformers model folder, or for a LoRA run the peft adapter folder (its base made absolute)."""
    if is_lora(model) and state is not None:
        model.save_pretrained(folder, state_dict=adapter_state(state), safe_serialization=True)
    elif state is None:
        model.save_pretrained(folder, safe_serialization=True)
    else:
        model.save_pretrained(folder, state_dict=state, safe_serialization=True)
    if is_lora(model):
        absolute_base(folder)
    tokenizer.save_pretrained(folder)


def publish_hf_folder(checkpoint: Path, folder: Path) -> None:
    """``folder``: the Hugging Face files of ``checkpoint`` (not its DCP shards nor its trainer state),
    hard-linked (copied where the filesystem cannot link), replaced atomically. Rank 0 alone calls it.

    RUN/final/ is the last step's checkpoint, which was just gathered and written: linking it costs no
    second gather of the full model (minutes and a full copy in host memory at 32B). The links share
    the files' data, not their names: pruning the checkpoint later (``keep_last``) leaves final/ whole.
    """
    if not (checkpoint / STATE_FILE).is_file():
        raise OffcurateError(f"{checkpoint}: not a complete checkpoint; cannot publish {folder.name}/")
    with atomic_output(folder, overwrite=True) as tmp:
        for path in sorted(checkpoint.iterdir()):
            if path.name in (SHARDED, STATE_FILE):
                continue
            if path.is_dir():
                shutil.copytree(path, tmp / path.name, copy_function=_link_or_copy)
            else:
                _link_or_copy(path, tmp / path.name)


_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.EOPNOTSUPP, errno.ENOTSUP}


def _link_or_copy(source: str | Path, target: str | Path) -> str | Path:
    """A hard link, or a copy where the filesystem has none (another device, no link support)."""
    try:
        os.link(source, target)
    except OSError as err:
        if err.errno not in _NO_LINK:
            raise
        shutil.copy2(source, target)
    return target


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: PreTrainedModel,
    policy: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    data_state: dict[str, Any],
    total_steps: int,
    keep_last: int = 2,
    ranks: Ranks = Ranks(),
) -> Path:
    """Write checkpoint-STEP atomically, then drop the oldest beyond ``keep_last`` (0 keeps all).

    Every rank calls it. ``total_steps`` is the run's length: the scheduler is a LambdaLR whose state
    does not hold the horizon of its cosine, so a resumed run rebuilds it from this number.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.api import CheckpointException
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = checkpoint_dir(run_dir, step)
    tmp = run_dir / f".{final.name}.tmp"  # the same path on every rank: they all write into it
    try:
        # each phase ends with every rank saying how it went (``agree``): a rank that failed (a full
        # disk) stops them all at once, and the error is said once, on one line
        on_rank0(ranks, lambda: _as_one_line(final, _fresh_folder, tmp))
        model_state, optim_state = get_state_dict(policy, optimizer, options=_state_options(policy))
        error = None
        try:
            with _one_process_is_fine():
                _as_one_line(
                    final, dcp.save, {"model": model_state, "optim": optim_state}, checkpoint_id=tmp / SHARDED
                )
        except (Exception, CheckpointException) as err:  # DCP's exception is a BaseException
            error = err
        agree(ranks, error)
        full = full_model_state(policy, ranks)
        rngs = gather_rng_states(ranks)
        state = {
            "step": step,
            "total_steps": total_steps,
            "world_size": ranks.world,
            "data": data_state,
            "scheduler": scheduler.state_dict(),
            "rng": rngs,
        }
        on_rank0(ranks, lambda: _as_one_line(final, _publish, tmp, final, model, tokenizer, full, state))
    except BaseException:
        if ranks.main:  # nothing half-written stays behind (on a full disk, it frees the space it took)
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    if ranks.main and keep_last > 0:
        for old in list_checkpoints(run_dir)[:-keep_last]:
            shutil.rmtree(old, ignore_errors=True)
    barrier(ranks)
    return final


def _fresh_folder(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir()


def _publish(tmp: Path, final: Path, model, tokenizer, full: dict | None, state: dict) -> None:
    """Rank 0: the Hugging Face files and the trainer state into ``tmp``, renamed to ``final``."""
    _write_hf(tmp, model, tokenizer, full)
    buffer = io.BytesIO()  # torch.save to a path says "file write failed" on a full disk, without errno
    torch.save(state, buffer)
    (tmp / STATE_FILE).write_bytes(buffer.getvalue())
    if final.exists():
        shutil.rmtree(final)
    tmp.rename(final)


def _as_one_line(final: Path, work, *args, **kwargs):
    """``work(*args, **kwargs)`` writing checkpoint ``final``; a full disk is one line (``disk_errors``)."""
    earlier = [p for p in list_checkpoints(final.parent) if p != final]
    if earlier:
        after = f"; free space, then continue from {earlier[-1].name} with --resume"
    else:
        after = "; no checkpoint was written yet, so the run folder is removed: free space and run it again"
    with disk_errors(final, after):
        return work(*args, **kwargs)


@contextmanager
def disk_errors(target: Path, after: str = "") -> Iterator[None]:
    """A full disk or a forbidden folder inside the block becomes one line naming the file and what was
    not written. Not every writer raises an OSError: DCP wraps each rank's error in a
    CheckpointException, and safetensors' Rust writer raises its own error holding the system's message.
    """
    try:
        yield
    except OffcurateError:
        raise
    except BaseException as err:
        reason = _write_failure(err)
        if reason is None and not isinstance(err, KeyboardInterrupt) and _disk_is_full(target):
            # torch's zip writer can meet the full disk as a short write ("unexpected pos 704 vs 598")
            reason = None, os.strerror(errno.ENOSPC)
        if reason is None:
            raise
        where, why = reason
        raise OffcurateError(f"{where or target}: {why}; {target.name} was not written{after}") from None


FULL_BELOW = 1 << 20  # bytes free under which a failed write is taken for a full disk


def _disk_is_full(path: Path) -> bool:
    """Less than ``FULL_BELOW`` bytes left where ``path`` is written (its nearest existing folder)."""
    folder = path
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free < FULL_BELOW
    except OSError:
        return False


_FAILURE_TEXT = {os.strerror(code): code for code in WRITE_FAILURES}


def _write_failure(err: BaseException) -> tuple[str | None, str] | None:
    """(file, reason) when ``err`` (or what it wraps) says the disk is full or the folder forbidden."""
    seen, todo = set(), [err]
    while todo:
        exc = todo.pop()
        if exc is None or id(exc) in seen:
            continue
        seen.add(id(exc))
        if is_write_failure(exc):
            return getattr(exc, "filename", None), exc.strerror or str(exc).splitlines()[0]
        text = str(exc) if not hasattr(exc, "failures") else ""
        for message in _FAILURE_TEXT:
            if message in text:
                return None, message
        todo += [exc.__cause__, exc.__context__]
        for wrapped in getattr(exc, "failures", {}).values():  # CheckpointException: rank -> (error, trace)
            todo.append(wrapped[0] if isinstance(wrapped, tuple) else wrapped)
    return None


@contextmanager
def _one_process_is_fine() -> Iterator[None]:
    """Silence DCP's notice that it runs without a process group: that is the one-process run."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        yield


def load_sharded_state(
    path: Path, state: dict[str, Any], policy: torch.nn.Module, optimizer: torch.optim.Optimizer
) -> None:
    """Model and optimizer of a checkpoint into this run's (possibly differently) sharded ones.

    A checkpoint written before the DCP shards (its optimizer inside trainer_state.pt, its weights in
    the Hugging Face folder the model was just loaded from) still resumes in one process.
    """
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    if not (path / SHARDED).is_dir():
        if "optimizer" in state and not (dist.is_available() and dist.is_initialized()):
            optimizer.load_state_dict(state["optimizer"])
            return
        raise OffcurateError(f"{path}: no {SHARDED}/ model and optimizer state to resume from")
    model_state, optim_state = get_state_dict(policy, optimizer, options=_state_options(policy))
    state = {"model": model_state, "optim": optim_state}
    with _one_process_is_fine():
        dcp.load(state, checkpoint_id=path / SHARDED)
    set_state_dict(
        policy,
        optimizer,
        model_state_dict=state["model"],
        optim_state_dict=state["optim"],
        options=_state_options(policy, strict=not _state_options(policy).ignore_frozen_params),
    )


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


def checkpoint_problem(path: Path) -> str | None:
    """Why a complete-looking checkpoint cannot be resumed from (a file missing, truncated, unreadable)."""
    try:
        state = load_state(path)
    except OffcurateError:
        return f"{STATE_FILE} is unreadable"
    if (path / SHARDED).is_dir() or "optimizer" not in state:  # (a checkpoint from before the shards)
        problem = dcp_problem(path / SHARDED)
        if problem:
            return problem
    if (path / "config.json").exists():
        problem = json_problem(path / "config.json")
        if problem:
            return problem
    return weights_problem(path)


def resume_checkpoint(run_dir: Path) -> tuple[Path, dict[str, Any], list[str]]:
    """The newest intact checkpoint, its trainer state, and "NAME: why" for each newer one skipped.

    A damaged checkpoint (a truncated shard, a missing .metadata, a truncated model.safetensors) is
    passed over for the one before it: a few steps are redone, nothing is lost or loaded half.
    """
    found = list_checkpoints(run_dir)
    if not found:
        raise OffcurateError(f"{run_dir}: no checkpoint-*/ with {STATE_FILE} to resume from")
    skipped = []
    for path in reversed(found):
        problem = checkpoint_problem(path)
        if problem is None:
            return path, load_state(path), skipped
        skipped.append(f"{path.name}: {problem}")
    raise OffcurateError(f"{run_dir}: no intact checkpoint to resume from ({'; '.join(skipped)})")
