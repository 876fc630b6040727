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

import contextlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..curate.io.errors import InputError, OffcurateError, OutputExistsError
from ..curate.io.output import atomic_output, check_distinct, output_lock, write_errors
from ..curate.io.report import StageReport, console
from . import distributed
from .checkpoint import (
    FINAL,
    checkpoint_dir,
    latest_checkpoint,
    list_checkpoints,
    load_sharded_state,
    load_state,
    publish_hf_folder,
    save_checkpoint,
    set_rng_state,
)
from .compute import accumulate, micro_batches, optimizer_step
from .config import TrainConfig, warmup_warning
from .data import ChatEncoder, RowReader, VotedIndex, open_voted
from .distributed import Ranks
from .lora import MERGED, add_lora, inner, write_merged
from .lora import check_installed as check_lora_installed
from .metrics import MetricsLog, describe, live_view, log_plain, summarise
from .mfu import measure_matmul_peak, model_flops, peak_memory_gib, reset_peak_memory
from .model import (
    PackedPolicy,
    Precision,
    check_max_len,
    count_parameters,
    empty_model,
    enable_checkpointing,
    load_config,
    load_model,
    load_tokenizer,
    reference_precision,
    resolve_precision,
)
from .optim import build_optimizer, build_scheduler
from .steps import StepBatch, StepStream
from .tiny import TINY_MODEL, resolve_model
from .tracking import Trackers, check_installed


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
        return distributed.shard_from_rank0(model, precision, cfg.logprob_chunk, device)
    return PackedPolicy(model, precision, cfg.logprob_chunk)


def _load(
    source: str, precision: Precision, cfg: TrainConfig, ranks: Ranks, device: torch.device, config=None
) -> torch.nn.Module:
    """The model of ``source``: read by the one process, or by rank 0 alone (host memory) while the other
    ranks of a sharded run build it on the meta device; ``_policy`` then shards it from rank 0."""
    if not ranks.sharded:
        return load_model(source, precision, device, cfg.attn, config=config)
    if ranks.main:
        return load_model(source, precision, device, cfg.attn, config=config, place=False)
    return empty_model(config if config is not None else load_config(source), precision, device, cfg.attn)


def _setup(
    cfg: TrainConfig, ranks: Ranks, device: torch.device, precision: Precision, index: VotedIndex
) -> Session:
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
    model_from = source if cfg.lora_r else weights_from  # a LoRA checkpoint's folder is an adapter
    config = load_config(model_from)
    check_max_len(config, cfg.max_len)
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
        "mfu": flops / seconds / peak_flops if peak_flops else None,
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
    base = load_model(_model_source(cfg), s.precision, torch.device("cpu"), "sdpa")
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
    ranks, device = distributed.start(cfg.device)
    try:
        return _run(cfg, ranks, device)
    finally:
        distributed.stop()


def _run(cfg: TrainConfig, ranks: Ranks, device: torch.device) -> StageReport | None:
    report = StageReport("train", output=str(cfg.output))
    precision = resolve_precision(cfg.dtype, device)
    check_distinct(cfg.output, (cfg.input,))  # --overwrite would delete an input inside the run folder
    index = open_voted(cfg.input)  # bad options and input fail here, before the run folder is touched
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    lock = output_lock(cfg.output) if ranks.main else contextlib.nullcontext()  # rank 0 owns the run folder
    with write_errors(cfg.output), lock:  # one train writes a run folder at a time
        return _train(cfg, ranks, report, device, precision, index)


def _train(
    cfg: TrainConfig, ranks: Ranks, report: StageReport, device, precision, index
) -> StageReport | None:
    if ranks.main:
        _prepare_run_dir(cfg)
        _model_source(cfg)  # builds tiny-random once, before the other ranks read it
    distributed.barrier(ranks)
    s = None
    try:
        s = _setup(cfg, ranks, device, precision, index)
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
    report.dropped.update(s.index.skipped)
    report.dropped.update(s.stream.dropped)
    return summarise(report, rows, s.step, s.device, cfg.output)
