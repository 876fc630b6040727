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
import shutil
import time

import torch

from ..curate.io.errors import InputError
from ..curate.io.output import atomic_output, check_distinct, output_lock, write_errors
from ..curate.io.report import StageReport, console
from . import distributed
from .checkpoint import FINAL, checkpoint_dir, list_checkpoints, publish_hf_folder
from .compute import accumulate, micro_batches, optimizer_step
from .config import TrainConfig, warmup_warning
from .data import open_voted
from .distributed import Ranks
from .lora import MERGED, write_merged
from .lora import check_installed as check_lora_installed
from .metrics import MetricsLog, describe, live_view, log_plain, summarise
from .mfu import measure_matmul_peak, model_flops, peak_memory_gib, reset_peak_memory, utilisation
from .model import count_parameters, load_model, resolve_precision
from .session import Session, model_source, prepare_run_dir, setup
from .steps import StepBatch
from .tracking import Trackers, check_installed


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


def _train_loop(s: Session) -> tuple[list[dict], int]:
    """Optimizer steps until the end of the run or of the data; returns the metrics rows, last saved step."""
    cfg, main = s.cfg, s.ranks.main
    quiet = _Quiet()
    log = quiet
    if main:
        log = MetricsLog(cfg.output / "metrics.jsonl", resume_step=s.step if cfg.resume else None)
    frozen = sum(p.numel() for p in s.model.parameters() if not p.requires_grad)  # a LoRA base: 4N, not 6N
    n_params, peak_flops = (count_parameters(s.model), frozen), measure_matmul_peak(s.device)
    rows, last_saved = [], s.step
    note = warmup_warning(cfg.warmup_steps, s.total, cfg.lr) if main else None
    view, task = live_view(s.end, s.step) if main else (quiet, None)
    trackers = None
    if main and cfg.report_to:
        trackers = Trackers(cfg.report_to, cfg.output, cfg.to_json(), s.step if cfg.resume else None)
    try:
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
                if trackers is not None:
                    trackers.log(row)
                rows.append(row)
                view.update(task, completed=s.step, info=describe(row))
                if main:
                    log_plain(s.step, s.end, row)
                if cfg.save_every and s.step % cfg.save_every == 0:
                    s.save()
                    last_saved = s.step
    finally:
        if trackers is not None:
            trackers.close()
    return rows, last_saved


def _write_merged(s: Session) -> None:
    """RUN/final-merged/: the start model with final/'s adapter folded in (rank 0, on the CPU)."""
    cfg = s.cfg
    base = load_model(model_source(cfg), s.precision, torch.device("cpu"), "sdpa")
    with atomic_output(cfg.output / MERGED, overwrite=True) as tmp:
        write_merged(tmp, base, cfg.output / FINAL, s.tokenizer)


def run_training(cfg: TrainConfig) -> StageReport | None:
    """Train as configured; return the stage report (also written to RUN/summary.json; None off rank 0).

    Under torchrun every rank runs this: rank 0 alone prepares the run folder and writes its files.
    """
    import transformers

    transformers.utils.logging.disable_progress_bar()
    cfg.validate()
    check_installed(cfg.report_to)
    if cfg.lora_r:
        check_lora_installed()
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
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    lock = output_lock(cfg.output) if ranks.main else contextlib.nullcontext()  # rank 0 owns the run folder
    with write_errors(cfg.output), lock:  # one train writes a run folder at a time
        return _train(cfg, ranks, report, device, precision, index)


def _train(
    cfg: TrainConfig, ranks: Ranks, report: StageReport, device, precision, index
) -> StageReport | None:
    if ranks.main:
        prepare_run_dir(cfg)
        model_source(cfg)  # builds tiny-random once, before the other ranks read it
    distributed.barrier(ranks)
    s = None
    try:
        s = setup(cfg, ranks, device, precision, index)
        rows, last_saved = _train_loop(s)
        if s.step == 0:
            raise InputError(f"{cfg.input}: no trainable trajectory (dropped: {dict(s.stream.dropped)})")
    except BaseException:
        # a fresh run that failed before its first step (bad --model, OOM, no data) leaves no folder
        # behind, so the corrected command works without --overwrite
        if ranks.main and not cfg.resume and (s is None or s.step == 0):
            shutil.rmtree(cfg.output, ignore_errors=True)
        raise
    if s.step > last_saved or not list_checkpoints(cfg.output):
        s.save()
    if ranks.main:  # final/ is the last step's checkpoint, gathered once: its files, hard-linked
        publish_hf_folder(checkpoint_dir(cfg.output, s.step), cfg.output / FINAL)
        if cfg.merge:
            _write_merged(s)
    distributed.barrier(ranks)
    if not ranks.main:
        return None
    report.counts["questions ok (trainable)"] = len(s.index.groups)
    if ranks.sharded:
        report.counts["ranks"] = ranks.world
    if ranks.sp > 1:
        report.counts["ranks sharing each row (--sp-size)"] = ranks.sp
    report.dropped.update(s.index.skipped)
    report.dropped.update(s.stream.dropped)
    return summarise(report, rows, s.step, s.device, cfg.output)
