"""The training loop of ``offcurate train``: micro-batches -> gradient accumulation -> one AdamW step.

    offcurate train -i runs/demo/voted -o runs/train --model tiny-random --max-steps 20   # the CLI runs:
    from offcurate.train.engine import run_training
    report = run_training(TrainConfig(input=..., output=..., model="tiny-random", max_steps=20))

One optimizer step = Q whole questions (``steps.StepStream``), packed into micro-batches of at most
``--tokens-per-micro-batch`` tokens (``packing``); each micro-batch's loss -Σ w·term is backpropagated at
once and the gradients add up, so the step's gradient is that of the exact step loss. Then: clip, AdamW,
scheduler, a metrics row, maybe a checkpoint; at the end RUN/final/ (the last checkpoint's model). What
the steps run on, the model, optimizer and data stream, fresh or resumed, is built by ``session``. The
compute of a step (``compute.accumulate`` and ``compute.optimizer_step``) is what bench/bench_train.py times.
"""

from __future__ import annotations

import contextlib
import json
import math
import time

import torch

from ..curate.io.errors import InputError, OffcurateError
from ..curate.io.output import atomic_output, check_distinct, output_lock, write_errors
from ..curate.io.report import StageReport, console
from . import distributed
from .checkpoint import FINAL, checkpoint_dir, disk_errors, list_checkpoints, publish_hf_folder
from .compute import accumulate, micro_batches, optimizer_step
from .config import TrainConfig, warmup_warning
from .data import open_voted
from .distributed import Ranks
from .lora import MERGED, write_merged
from .lora import check_installed as check_lora_installed
from .metrics import MetricsLog, describe, live_view, read_rows, summarise
from .mfu import measure_matmul_peak, model_flops, peak_memory_gib, reset_peak_memory, utilisation
from .model import count_parameters, load_model, load_tokenizer, resolve_precision
from .run_folder import (
    check_start_model,
    cleanup_failed_start,
    prepare_run_dir,
    read_run_id,
    save_resumed_options,
)
from .session import Session, Start, model_source, setup, starting_point
from .steps import StepBatch
from .tiny import TINY_MODEL
from .tracking import Trackers, check_credentials, check_installed


def _train_step(s: Session, batch: StepBatch, n_params: tuple[int, int], peak_flops: float | None) -> dict:
    """One optimizer step on ``batch``; returns its metrics row."""
    cfg, device = s.cfg, s.device
    reset_peak_memory(device)
    start = time.perf_counter()
    batches = micro_batches(batch.samples, cfg.tokens_per_micro_batch)
    stats = accumulate(s.policy, distributed.my_share(batches, s.ranks), cfg.objective, device, s.ref_policy)
    lr = s.scheduler.get_last_lr()[0]
    grad_norm = optimizer_step(s.policy, s.optimizer, cfg.grad_clip)
    s.scheduler.step()
    if s.ranks.sharded:  # each rank summed its own micro-batches; every rank knows the whole step's sizes
        distributed.all_sum(s.ranks, stats.loss, stats.prob_sum, stats.kl_sum)
        stats.n_loss_tokens = sum(int(b.targets.numel()) for b in batches)
        stats.seq_lengths = [n for b in batches for n in b.seq_lengths]
    loss = float(stats.loss)  # waits for the device: the step time below is real
    if not (math.isfinite(loss) and math.isfinite(grad_norm)):
        raise OffcurateError(_diverged(s, loss, grad_norm))
    seconds = time.perf_counter() - start
    s.step += 1
    mcfg = s.model.config
    tokens = sum(stats.seq_lengths)
    flops = model_flops(n_params[0], mcfg.num_hidden_layers, mcfg.hidden_size, stats.seq_lengths, n_params[1])
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
        "micro_batches": len(batches),
        "tokens": tokens,
        "loss_tokens": stats.n_loss_tokens,
        "mean_token_prob": float(stats.prob_sum) / n_tok,
        "kl": float(stats.kl_sum) / n_tok if s.ref_policy is not None else None,
        "dropped_long": batch.dropped.get("trajectory longer than max-len", 0),
        "step_seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "mfu": utilisation(flops, seconds, peak_flops, s.ranks.world),
        "peak_memory_gib": peak_memory_gib(device),
    }


def _diverged(s: Session, loss: float, grad_norm: float) -> str:
    """The one line of a step whose loss or gradient is not finite (every rank computes the same two)."""
    saved = list_checkpoints(s.cfg.output)
    if saved:
        kept = f"{saved[-1]} is the last good checkpoint (--resume continues from it)"
    else:
        kept = "no checkpoint was written yet, so the run folder is removed"
    return (
        f"step {s.step + 1}: the loss is {loss:g} and the gradient norm {grad_norm:g}: the run stopped "
        f"without saving this step; {kept}. Lower --lr, or look at the data of that step"
    )


class _Quiet:
    """The live view and metrics file of ranks other than 0: they train but write and draw nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def update(self, *args, **kwargs) -> None:
        return None

    def write(self, row: dict) -> None:
        return None


def _train_loop(s: Session) -> tuple[list[dict], int, bool]:
    """Optimizer steps until the end of the run, of this invocation (--stop-after) or of the data; returns
    this invocation's metrics rows, the last saved step, and whether the data ran out."""
    cfg, main = s.cfg, s.ranks.main
    quiet = _Quiet()
    log = quiet
    if main:
        log = MetricsLog(cfg.output / "metrics.jsonl", resume_step=s.step if cfg.resume else None)
    frozen = sum(p.numel() for p in s.model.parameters() if not p.requires_grad)  # a LoRA base: 4N, not 6N
    n_params, peak_flops = (count_parameters(s.model), frozen), measure_matmul_peak(s.device)
    rows, last_saved, exhausted = [], s.step, False
    note = warmup_warning(cfg.warmup_steps, s.total, cfg.lr) if main else None
    view, task = live_view(s.total, s.step) if main else (quiet, None)
    trackers = None
    if main and cfg.report_to:
        resume_step = s.step if cfg.resume else None
        trackers = Trackers(cfg.report_to, cfg.output, cfg.to_json(), resume_step, read_run_id(cfg.output))

    def bookkeeping(row: dict) -> None:  # rank 0's files and views of one step
        log.write(row)
        if trackers is not None:
            trackers.log(row)
        view.update(task, completed=s.step, info=describe(row))

    try:
        with view:
            while s.step < s.end:
                batch = s.stream.next_step()
                if batch is None:
                    exhausted = True
                    break
                if note:  # said once there is something to train, so a run that fails stays one line
                    console.print(f"[yellow]warning: {note}[/]", highlight=False, soft_wrap=True)
                    note = None
                row = _train_step(s, batch, n_params, peak_flops)
                rows.append(row)
                # the other ranks learn whether rank 0's writes worked (a full disk stops every rank at once)
                distributed.on_rank0(s.ranks, lambda row=row: _as_write_error(cfg, bookkeeping, row))
                if cfg.save_every and s.step % cfg.save_every == 0:
                    s.save()
                    last_saved = s.step
    finally:
        if trackers is not None:
            trackers.close()
    return rows, last_saved, exhausted


def _as_write_error(cfg: TrainConfig, work, *args) -> None:
    with write_errors(cfg.output):
        work(*args)


def _write_merged(cfg: TrainConfig, precision) -> None:
    """RUN/final-merged/: the start model with final/'s adapter folded in (rank 0, on the CPU)."""
    base = load_model(model_source(cfg), precision, torch.device("cpu"), "sdpa")
    with atomic_output(cfg.output / MERGED, overwrite=True) as tmp:
        write_merged(tmp, base, cfg.output / FINAL, load_tokenizer(cfg.output / FINAL))


def run_training(cfg: TrainConfig) -> StageReport | None:
    """Train as configured; return the stage report (also written to RUN/summary.json; None off rank 0).

    Under torchrun every rank runs this: rank 0 alone prepares the run folder and writes its files.
    """
    import transformers

    transformers.utils.logging.disable_progress_bar()
    cfg.validate()
    check_installed(cfg.report_to)
    check_credentials(cfg.report_to)
    if cfg.lora_r:
        check_lora_installed()
    check_start_model(cfg)
    ranks, device = distributed.start(cfg.device, cfg.sp_size)
    try:
        return _run(cfg, ranks, device)
    finally:
        distributed.stop()


def _run(cfg: TrainConfig, ranks: Ranks, device: torch.device) -> StageReport | None:
    report = StageReport("train", output=str(cfg.output))
    precision = resolve_precision(cfg.dtype, device)
    check_distinct(cfg.output, (cfg.input,))  # --overwrite would delete an input inside the run folder
    index = open_voted(
        cfg.input, cfg.reward
    )  # bad options and input fail here, before the run folder is touched
    with write_errors(cfg.output), contextlib.ExitStack() as held:
        # rank 0 alone owns the run folder: it takes its lock (one train per folder) and prepares it; the
        # other ranks learn whether that worked, so a refusal is said once, by rank 0
        distributed.on_rank0(ranks, lambda: _open_run_folder(cfg, held))
        return _train(cfg, ranks, report, device, precision, index)


def _open_run_folder(cfg: TrainConfig, held: contextlib.ExitStack) -> None:
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    held.enter_context(output_lock(cfg.output))
    prepare_run_dir(cfg)


def _train(
    cfg: TrainConfig, ranks: Ranks, report: StageReport, device, precision, index
) -> StageReport | None:
    s = None
    try:
        distributed.on_rank0(ranks, lambda: _build_start_model(cfg))
        start = starting_point(cfg, index, ranks)
        if start.finished:
            return distributed.on_rank0(ranks, lambda: _already_finished(cfg, report, start, precision))
        if cfg.resume:  # accepted: config.json records this invocation's options (same identity)
            distributed.on_rank0(ranks, lambda: save_resumed_options(cfg))
        s = setup(cfg, ranks, device, precision, index, start)
        rows, last_saved, exhausted = _train_loop(s)
        if s.step == 0:
            raise InputError(f"{cfg.input}: no trainable trajectory (dropped: {dict(s.stream.dropped)})")
        if s.step > last_saved or not list_checkpoints(cfg.output):
            s.save()
    except BaseException:
        # a fresh run that failed before its first checkpoint (bad --model, no data, a full disk, a
        # diverged first step) leaves no folder behind, so the same command works once the cause is gone
        if ranks.main:
            cleanup_failed_start(cfg, bool(list_checkpoints(cfg.output)))
        raise
    finished = exhausted or s.step >= s.total
    if finished:  # final/ is the finished run's model: a run stopped early (--stop-after) has none yet
        distributed.on_rank0(ranks, lambda: _publish_final(cfg, s.step, precision))
    if not ranks.main:
        return None
    report.counts["questions ok (trainable)"] = len(s.index.groups)
    if ranks.sharded:
        report.counts["ranks"] = ranks.world
    if ranks.sp > 1:
        report.counts["ranks sharing each row (--sp-size)"] = ranks.sp
    report.dropped.update(s.index.skipped)
    report.dropped.update(s.stream.dropped)
    every_row = read_rows(cfg.output / "metrics.jsonl", s.step)  # the whole run, earlier invocations too
    return summarise(report, every_row, len(rows), s.step, s.total, finished, s.device, cfg.output)


def _build_start_model(cfg: TrainConfig) -> None:
    """tiny-random is built once, by rank 0, before the other ranks read it (a full disk: one line)."""
    with disk_errors(cfg.output / TINY_MODEL, "; free space and run the same command again"):
        model_source(cfg)


def _publish_final(cfg: TrainConfig, step: int, precision) -> None:
    """final/ is the last step's checkpoint, gathered once: its files, hard-linked; and final-merged/."""
    with write_errors(cfg.output):
        publish_hf_folder(checkpoint_dir(cfg.output, step), cfg.output / FINAL)
        if cfg.merge:
            _write_merged(cfg, precision)


def _already_finished(cfg: TrainConfig, report: StageReport, start: Start, precision) -> StageReport:
    """--resume of a finished run: nothing to train, nothing rewritten; final/ is published if a crash
    came between the last checkpoint and it. Returns the run's summary as it was written."""
    console.print(
        f"{cfg.output}: the run is finished (step {start.step} of {start.total}); nothing to resume",
        style="yellow",
        highlight=False,
        soft_wrap=True,
    )
    if not (cfg.output / FINAL).is_dir() or (cfg.merge and not (cfg.output / MERGED).is_dir()):
        _publish_final(cfg, start.step, precision)
    try:
        summary = json.loads((cfg.output / "summary.json").read_text())
    except (OSError, ValueError):
        summary = None
    if not isinstance(summary, dict) or not summary.get("finished", True):
        report.counts["questions ok (trainable)"] = "-"
        rows = read_rows(cfg.output / "metrics.jsonl", start.step)
        return summarise(report, rows, 0, start.step, start.total, True, "-", cfg.output)
    report.counts.update(summary.get("counts", {}))
    report.dropped.update(summary.get("dropped", {}))
    report.seconds = float(summary.get("seconds", 0.0))
    return report
