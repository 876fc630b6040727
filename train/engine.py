"""The training loop of ``offcurate train``: micro-batches -> gradient accumulation -> one AdamW step.

    from offcurate.train.engine import run_training
    report = run_training(TrainConfig(input=..., output=..., model="tiny-random", max_steps=20))

One optimizer step = Q whole questions (``steps.StepStream``), packed into micro-batches of at most
``--tokens-per-micro-batch`` tokens (``packing``); each micro-batch's loss -Σ w·term is backpropagated at
once and the gradients add up, so the step's gradient is that of the exact step loss. Then: clip, AdamW,
scheduler, a metrics row, maybe a checkpoint. The compute of a step (``compute.accumulate`` and
``compute.optimizer_step``) is what bench/bench_train.py times.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..curate.io.errors import InputError, OffcurateError, OutputExistsError
from ..curate.io.output import check_distinct, output_lock, write_errors
from ..curate.io.report import StageReport, console
from .checkpoint import latest_checkpoint, list_checkpoints, load_state, save_checkpoint, set_rng_state
from .compute import accumulate, micro_batches, optimizer_step
from .config import TrainConfig, warmup_warning
from .data import ChatEncoder, RowReader, VotedIndex, open_voted
from .metrics import MetricsLog, describe, live_view, log_plain, summarise
from .mfu import measure_matmul_peak, model_flops, peak_memory_gib, reset_peak_memory
from .model import (
    Precision,
    check_max_len,
    count_parameters,
    enable_checkpointing,
    load_config,
    load_model,
    load_tokenizer,
    reference_precision,
    resolve_device,
    resolve_precision,
)
from .optim import build_optimizer, build_scheduler
from .steps import StepBatch, StepStream
from .tiny import TINY_MODEL, resolve_model


def _prepare_run_dir(cfg: TrainConfig) -> None:
    """Fresh run: an empty folder (--overwrite deletes only an earlier train run). Resume: same options."""
    out = cfg.output
    if cfg.resume:
        cfg.check_resumable(out)
    elif out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise OutputExistsError(
                f"{out}: output folder exists and is not empty (pass --overwrite or --resume)"
            )
        if not (out / "config.json").is_file():
            raise OutputExistsError(f"{out}: not an offcurate train run folder; refusing to delete it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    cfg.save(out)  # on resume: records the options of the latest invocation (same identity)


def _model_source(cfg: TrainConfig) -> str:
    return resolve_model(cfg.model, cfg.output / TINY_MODEL, seed=cfg.seed)


@dataclass
class Session:
    """Everything a run holds while it trains (built by ``_setup``, fresh or from a checkpoint)."""

    cfg: TrainConfig
    device: torch.device
    precision: Precision
    index: VotedIndex
    tokenizer: object
    model: torch.nn.Module
    ref_model: torch.nn.Module | None
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
            self.cfg.output, self.step, self.model, self.tokenizer, self.optimizer, self.scheduler,
            self.data_state(), self.total, self.cfg.keep_last,
        )  # fmt: skip


def _setup(cfg: TrainConfig, device: torch.device, precision: Precision, index: VotedIndex) -> Session:
    """Model, optimizer, schedule and data stream of a prepared run folder (fresh or from a checkpoint)."""
    torch.manual_seed(cfg.seed)
    source = _model_source(cfg)
    state, weights_from = None, source
    if cfg.resume:
        weights_from = str(latest_checkpoint(cfg.output))
        state = load_state(Path(weights_from))
        if state["data"].get("fingerprint") != index.fingerprint:
            raise InputError(f"{cfg.input}: the input changed since {weights_from} was written")
    step = int(state["step"]) if state else 0
    total = _run_length(cfg, index, state)
    end = _stop_step(cfg, step, total)  # checked before any weight loads
    config = load_config(weights_from)
    check_max_len(config, cfg.max_len)
    tokenizer = load_tokenizer(weights_from)
    model = load_model(weights_from, precision, device, cfg.attn, config=config)
    ref_model = None
    if cfg.objective.beta > 0:
        ref_precision = reference_precision(precision, device)
        ref_model = load_model(source, ref_precision, device, cfg.attn).eval().requires_grad_(False)
    model.train()
    if cfg.gradient_checkpointing:
        enable_checkpointing(model)

    optimizer = build_optimizer(model, cfg.lr, cfg.weight_decay, device)
    scheduler = build_scheduler(optimizer, cfg.warmup_steps, total)
    data = state["data"] if state else {"epoch": 0, "position": 0, "dropped": {}}
    stream = StepStream(
        index, RowReader(index.shards), ChatEncoder(tokenizer), cfg.objective, cfg.questions_per_step,
        cfg.max_len, seed=cfg.seed, shuffle=cfg.shuffle, epochs=None if cfg.max_steps else cfg.epochs,
        epoch=data["epoch"], position=data["position"],
    )  # fmt: skip
    stream.dropped.update(data["dropped"])
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
    return Session(
        cfg, device, precision, index, tokenizer, model, ref_model, optimizer, scheduler, stream, step, total,
        end,
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


def _train_step(s: Session, batch: StepBatch, n_params: int, peak_flops: float | None) -> dict:
    """One optimizer step on ``batch``; returns its metrics row."""
    cfg, device = s.cfg, s.device
    reset_peak_memory(device)
    start = time.perf_counter()
    stats = accumulate(
        s.model, micro_batches(batch.samples, cfg.tokens_per_micro_batch), cfg.objective, s.precision,
        device, cfg.logprob_chunk, s.ref_model,
    )  # fmt: skip
    lr = s.scheduler.get_last_lr()[0]
    grad_norm = optimizer_step(s.model, s.optimizer, cfg.grad_clip)
    s.scheduler.step()
    loss = float(stats.loss)  # waits for the device: the step time below is real
    seconds = time.perf_counter() - start
    s.step += 1
    mcfg = s.model.config
    tokens = sum(stats.seq_lengths)
    flops = model_flops(n_params, mcfg.num_hidden_layers, mcfg.hidden_size, stats.seq_lengths)
    n_tok = max(1, stats.n_loss_tokens)
    return {
        "step": s.step,
        "epoch": batch.epoch,
        "loss": loss,
        "mean_advantage": sum(batch.advantages) / max(1, len(batch.advantages)),
        "all_positive_fraction": batch.n_all_positive / batch.n_questions,
        "grad_norm": grad_norm,
        "lr": lr,
        "questions": batch.n_questions,
        "trajectories": len(batch.samples),
        "tokens": tokens,
        "loss_tokens": stats.n_loss_tokens,
        "mean_token_prob": float(stats.prob_sum) / n_tok,
        "kl": float(stats.kl_sum) / n_tok if s.ref_model is not None else None,
        "dropped_long": batch.dropped.get("trajectory longer than max-len", 0),
        "step_seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "mfu": flops / seconds / peak_flops if peak_flops else None,
        "peak_memory_gib": peak_memory_gib(device),
    }


def _train_loop(s: Session) -> tuple[list[dict], int]:
    """Optimizer steps until the end of the run or of the data; returns the metrics rows, last saved step."""
    cfg = s.cfg
    log = MetricsLog(cfg.output / "metrics.jsonl", resume_step=s.step if cfg.resume else None)
    n_params, peak_flops = count_parameters(s.model), measure_matmul_peak(s.device)
    rows, last_saved = [], s.step
    note = warmup_warning(cfg.warmup_steps, s.total, cfg.lr)
    view, task = live_view(s.end, s.step)
    with view:
        while s.step < s.end:
            batch = s.stream.next_step()
            if batch is None:
                break
            if note:  # said once there is something to train, so a run that fails stays one line
                console.print(f"[yellow]warning: {note}[/]", highlight=False, soft_wrap=True)
                note = None
            row = _train_step(s, batch, n_params, peak_flops)
            log.write(row)
            rows.append(row)
            view.update(task, completed=s.step, info=describe(row))
            log_plain(s.step, s.end, row)
            if cfg.save_every and s.step % cfg.save_every == 0:
                s.save()
                last_saved = s.step
    return rows, last_saved


def run_training(cfg: TrainConfig) -> StageReport:
    """Train as configured; return the stage report (also written to RUN/summary.json)."""
    import transformers

    transformers.utils.logging.disable_progress_bar()
    cfg.validate()
    report = StageReport("train", output=str(cfg.output))
    device = resolve_device(cfg.device)
    precision = resolve_precision(cfg.dtype, device)
    check_distinct(cfg.output, (cfg.input,))  # --overwrite would delete an input inside the run folder
    index = open_voted(cfg.input)  # bad options and input fail here, before the run folder is touched
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    with write_errors(cfg.output), output_lock(cfg.output):  # one train writes a run folder at a time
        return _train(cfg, report, device, precision, index)


def _train(cfg: TrainConfig, report: StageReport, device, precision, index) -> StageReport:
    _prepare_run_dir(cfg)
    s = None
    try:
        s = _setup(cfg, device, precision, index)
        rows, last_saved = _train_loop(s)
        if s.step == 0:
            raise InputError(f"{cfg.input}: no trainable trajectory (dropped: {dict(s.stream.dropped)})")
    except BaseException:
        # a fresh run that failed before its first step (bad --model, OOM, no data) leaves no folder
        # behind, so the corrected command works without --overwrite
        if not cfg.resume and (s is None or s.step == 0):
            shutil.rmtree(cfg.output, ignore_errors=True)
        raise
    if s.step > last_saved or not list_checkpoints(cfg.output):
        s.save()
    final = cfg.output / "final"
    shutil.rmtree(final, ignore_errors=True)
    s.model.save_pretrained(final, safe_serialization=True)
    s.tokenizer.save_pretrained(final)
    report.counts["questions ok (trainable)"] = len(s.index.groups)
    report.dropped.update(s.index.skipped)
    report.dropped.update(s.stream.dropped)
    return summarise(report, rows, s.step, s.device, cfg.output)
