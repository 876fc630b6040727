"""A training run's state: the run folder, the model and its policy, optimizer, schedule and data stream.

    from offcurate.train.session import setup, starting_point
    start = starting_point(cfg, index, ranks)             # fresh, or the newest intact checkpoint
    s = setup(cfg, ranks, device, precision, index, start)   # every rank: model, optimizer, data stream
    s.save()                                              # checkpoint-STEP (every rank calls it)

``engine`` runs the steps on a ``Session``. A fresh run loads the start model; a resumed one loads the
newest intact checkpoint's weights, optimizer, schedule, RNG and data position (a damaged newer one is
skipped with a warning naming it), and refuses one whose input or run length changed. On many ranks rank
0 alone reads the weights and ``_policy`` shards them from it. The run folder itself: ``run_folder``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..curate.io.errors import InputError, OffcurateError
from ..curate.io.report import console
from . import distributed, ulysses
from .checkpoint import load_sharded_state, resume_checkpoint, save_checkpoint, set_rng_state
from .config import TrainConfig
from .data import ChatEncoder, RowReader, VotedIndex
from .distributed import Ranks
from .lora import add_lora, inner
from .model import (
    PackedPolicy,
    Precision,
    check_max_len,
    empty_model,
    enable_checkpointing,
    load_config,
    load_model,
    load_tokenizer,
    reference_precision,
)
from .optim import build_optimizer, build_scheduler
from .steps import StepStream
from .tiny import TINY_MODEL, resolve_model


def model_source(cfg: TrainConfig) -> str:
    """The start model: ``--model``, or for tiny-random the folder it is built into once (RUN/tiny-random)."""
    return resolve_model(cfg.model, cfg.output / TINY_MODEL, seed=cfg.seed)


@dataclass
class Session:
    """Everything a run holds while it trains (built by ``setup``, fresh or from a checkpoint)."""

    cfg: TrainConfig
    ranks: Ranks
    device: torch.device
    precision: Precision
    index: VotedIndex
    tokenizer: object
    model: torch.nn.Module  # the Hugging Face model (its config, its save format), or its PeftModel
    policy: PackedPolicy  # what the step calls: a PackedPolicy around it, FSDP-sharded on many ranks
    ref_policy: PackedPolicy | None  # the frozen reference (--beta > 0), a PackedPolicy too
    optimizer: torch.optim.Optimizer
    scheduler: object
    stream: StepStream
    step: int
    total: int  # the run's length: the schedule's horizon, fixed when the run starts
    end: int  # where this invocation stops: ``total``, or earlier with --stop-after

    def data_state(self) -> dict:
        return {**self.stream.state(), "fingerprint": self.index.fingerprint}

    def save(self) -> None:
        save_checkpoint(
            self.cfg.output, self.step, self.model, self.policy, self.tokenizer, self.optimizer,
            self.scheduler, self.data_state(), self.total, self.cfg.keep_last, self.ranks,
        )  # fmt: skip


def _policy(
    model: torch.nn.Module, cfg: TrainConfig, ranks: Ranks, precision: Precision, device: torch.device
) -> PackedPolicy:
    """The module the step calls: FSDP2 per decoder layer + a root over the rest when sharded."""
    if ranks.sharded:
        return distributed.shard_from_rank0(model, precision, cfg.logprob_chunk, device, ranks.sp_group)
    return PackedPolicy(model, precision, cfg.logprob_chunk)


def _load(
    source: str, precision: Precision, cfg: TrainConfig, ranks: Ranks, device: torch.device, config=None
) -> torch.nn.Module:
    """The model of ``source``: read by the one process, or by rank 0 alone (host memory) while the other
    ranks of a sharded run build it on the meta device; ``_policy`` then shards it from rank 0."""
    if not ranks.sharded:
        return load_model(source, precision, device, cfg.attention, config=config)
    # rank 0 alone reads the weights: the others wait for it (a damaged file is said once, by rank 0)
    model = distributed.on_rank0(
        ranks, lambda: load_model(source, precision, device, cfg.attention, config=config, place=False)
    )
    if ranks.main:
        return model
    config = config if config is not None else load_config(source)
    return empty_model(config, precision, device, cfg.attention)


@dataclass(frozen=True)
class Start:
    """Where an invocation starts (step 0, or a checkpoint and its state) and where it stops."""

    checkpoint: Path | None
    state: dict | None
    step: int
    total: int  # the run's length
    end: int  # this invocation's last step: ``total``, or earlier with --stop-after

    @property
    def finished(self) -> bool:
        return self.step >= self.total


def starting_point(cfg: TrainConfig, index: VotedIndex, ranks: Ranks) -> Start:
    """Fresh, or the newest intact checkpoint of a --resume; checked before any weight loads."""
    checkpoint, state = None, None
    if cfg.resume:
        checkpoint, state, skipped = resume_checkpoint(cfg.output)
        if skipped and ranks.main:
            console.print(
                f"warning: skipped {'; '.join(skipped)}; resuming from {checkpoint.name}",
                style="yellow",
                markup=False,
                highlight=False,
                soft_wrap=True,
            )
        if state["data"].get("fingerprint") != index.fingerprint:
            raise InputError(f"{cfg.input}: the input changed since {checkpoint} was written")
    step = int(state["step"]) if state else 0
    total = _run_length(cfg, index, state)
    end = total if step >= total and cfg.stop_after is None else _stop_step(cfg, step, total)
    return Start(checkpoint, state, step, total, end)


def setup(
    cfg: TrainConfig,
    ranks: Ranks,
    device: torch.device,
    precision: Precision,
    index: VotedIndex,
    start: Start | None = None,
) -> Session:
    """Model, optimizer, schedule and data stream of a prepared run folder, fresh or from a checkpoint
    (``start``, by default ``starting_point``'s)."""
    start = start if start is not None else starting_point(cfg, index, ranks)
    torch.manual_seed(cfg.seed)
    source = model_source(cfg)
    state, step, total, end = start.state, start.step, start.total, start.end
    weights_from = str(start.checkpoint) if start.checkpoint is not None else source
    model_from = source if cfg.lora_r else weights_from  # a LoRA checkpoint's folder is an adapter
    config = load_config(model_from)
    check_max_len(config, cfg.max_len)
    ulysses.check_model(config, cfg.sp_size)
    tokenizer = load_tokenizer(weights_from)
    model = _load(model_from, precision, cfg, ranks, device, config)
    ref_policy = None
    if cfg.objective.beta > 0:
        ref_precision = reference_precision(precision, device)
        ref = _load(source, ref_precision, cfg, ranks, device).eval().requires_grad_(False)
        ref_policy = _policy(ref, cfg, ranks, ref_precision, device)
    model.train()
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)
    if cfg.lora_r:
        model = add_lora(model, cfg.lora_r, cfg.lora_alpha or 2.0 * cfg.lora_r, cfg.lora_targets)
    policy = _policy(inner(model), cfg, ranks, precision, device)

    optimizer = build_optimizer(policy, cfg.lr, cfg.weight_decay, device, cfg.seed)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, total)
    data = state["data"] if state else {"epoch": 0, "position": 0, "dropped": {}}
    stream = StepStream(
        index, RowReader(index.shards), ChatEncoder(tokenizer), cfg.objective, cfg.questions_per_step,
        cfg.max_len, seed=cfg.seed, shuffle=cfg.shuffle, epochs=None if cfg.max_steps else cfg.epochs,
        epoch=data["epoch"], position=data["position"],
    )  # fmt: skip
    stream.dropped.update(data["dropped"])
    if state is not None:
        load_sharded_state(Path(weights_from), state, policy, optimizer)
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"], ranks.rank)
    return Session(
        cfg, ranks, device, precision, index, tokenizer, model, policy, ref_policy, optimizer, scheduler,
        stream, step, total, end,
    )  # fmt: skip


def _run_length(cfg: TrainConfig, index: VotedIndex, state: dict | None) -> int:
    """Optimizer steps of the whole run, the horizon the cosine decays over.

    LambdaLR does not store its lambda, so a resumed run must rebuild the schedule with the horizon the run
    started with: the checkpoint stores it, and --max-steps / --epochs cannot change on resume (config).
    """
    total = cfg.max_steps or -(-len(index.groups) // cfg.questions_per_step) * cfg.epochs
    saved = state.get("total_steps") if state else None
    if saved is not None and int(saved) != total:
        raise InputError(
            f"{cfg.output}: the checkpoint belongs to a run of {saved} steps, these options give {total}"
        )
    return total


def _stop_step(cfg: TrainConfig, step: int, total: int) -> int:
    """The last step of this invocation: the run's end, or --stop-after (never past the run's end)."""
    if cfg.stop_after is None:
        return total
    if cfg.stop_after > total:
        raise OffcurateError(
            f"--stop-after {cfg.stop_after} is past the run's last step {total} (--max-steps / --epochs)"
        )
    if cfg.stop_after <= step:
        raise OffcurateError(f"--stop-after {cfg.stop_after}: the run is already at step {step}")
    return cfg.stop_after
