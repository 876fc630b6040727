"""GPU benchmark of the ``offcurate train`` step against the naive anchor, side by side in one run.

    python bench/bench_train.py                               # every case of the issue (H100/H200, ~10 min)
    python bench/bench_train.py --cases 1.5B@16K --compile    # one case, plus a torch.compile variant
    python bench/bench_train.py --append BENCHMARKS.md        # also append the table as Markdown
    python bench/bench_train.py --smoke                       # CPU, tiny shapes, 2 steps: checks the script
                                                              # (its "fsdp x2" row: 2 CPU ranks, torchrun)

On the lent GPU only the repository travels: ``cp -r ../shared shared`` first (git-ignored), so the naive
rows run the anchor itself. Random-init Qwen2.5-shaped models (no weights can be fetched there). Modes:
naive   the ``step()`` of shared/bench/train_step_anchor.py, loaded from ./shared/ in the checkout or
        ../shared/ beside it (a copy of it in this file only when neither exists; ``naive =`` says which),
        with the anchor's setup: bf16 weights, SDPA, HF gradient checkpointing, full logits -> float32
        log_softmax -> gather, fused AdamW; one sequence of T tokens per step.
ours    the project's step (offcurate.train.compute.accumulate): packed rows (varlen flash attention on
        CUDA), chunked log-probs at response tokens only, checkpointing, bf16-mixed (fp32 master weights
        and AdamW states), fused AdamW, gradient clipping. ``sel`` checkpoints every 2nd layer only.
lean    ``offcurate train --dtype bf16``, the trainer's low-memory configuration: the same step with bf16
        weights, gradients and AdamW states (8 bytes a parameter instead of 16), updates stochastically
        rounded so that lr 1e-6 still trains, gradient clipping included.
fsdp    ``ours`` as ``torchrun -m offcurate train`` runs it, on a one-rank process group: FSDP2 per decoder
        layer + the PackedPolicy root, MixedPrecisionPolicy (bf16 params, fp32 reduce) instead of autocast.
        Beside ``ours`` on one GPU it is the price of the sharding machinery itself (copies in and out of
        the flat shards, hooks); ``fsdp-lean`` is the same for ``lean``.
fsdp xN the same on N GPUs: the script starts itself again under ``python -m torch.distributed.run
        --nproc-per-node N`` (``multi_rank``; a hidden ``--worker`` flag, one process per GPU, NCCL). A
        step is N·per_step trajectories split across the ranks as the trainer splits one
        (``distributed.my_share``); every rank times the same steps between barriers, and rank 0 writes
        the row: tokens/s summed over the ranks, MFU per GPU, peak memory the largest of any rank. With
        fewer than N GPUs the row says so ("skipped (needs 8 GPUs, 1 here)"); ``--smoke`` runs its xN
        rows as CPU processes (gloo). ``spK``: ``--sp-size K``, K GPUs share each row (N/K rows a step).
lora    7B as ``offcurate train --dtype bf16 --lora-r 64`` trains it (peft adapters on every projection,
        frozen bf16 base), when peft is installed.
MFU = (6N + 6·L·l·d)·tokens/s / measured bf16 matmul peak (recomputation not counted), as the anchor;
LoRA rows count their frozen base weights 4 per token instead of 6 (no weight gradient).
"""

from __future__ import annotations

import argparse
import functools
import importlib.util
import json
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from checkout import ROOT, use_this_checkout
from multi_rank import exit_rank, on_ranks
from train_cases import SHAPES, Run, cases, smoke_cases, with_compile

use_this_checkout()  # the GPU machine has a plain copy of the repository, not an installed package

from offcurate.train import distributed  # noqa: E402
from offcurate.train.attention import set_attention  # noqa: E402
from offcurate.train.compute import accumulate, micro_batches, optimizer_step  # noqa: E402
from offcurate.train.distributed import Ranks, my_share, shard  # noqa: E402
from offcurate.train.lora import add_lora, inner  # noqa: E402
from offcurate.train.mfu import measure_matmul_peak, model_flops  # noqa: E402
from offcurate.train.model import PackedPolicy, enable_checkpointing, resolve_precision  # noqa: E402
from offcurate.train.objective import ObjectiveConfig  # noqa: E402
from offcurate.train.optim import build_optimizer  # noqa: E402
from offcurate.train.packing import Sample  # noqa: E402

MFU_NOTE = (
    "MFU = model FLOPs / measured bf16 matmul peak: 6N + 6·L·l·d per token (recomputation not counted); "
    "LoRA rows count the frozen base weights 4 per token, not 6 (no weight gradient), which 6N would "
    "overstate by ~1.5x."
)


def build(shape: str, device: torch.device, dtype: torch.dtype, seq: int):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = Qwen2Config(
        rope_theta=1e6, max_position_embeddings=max(32768, seq), use_cache=False, **SHAPES[shape]
    )
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)  # build in the final dtype: a 7B fp32 copy would not fit beside it
    try:
        with torch.device(device):
            return Qwen2ForCausalLM(cfg)
    finally:
        torch.set_default_dtype(default)


ANCHOR = Path("shared") / "bench" / "train_step_anchor.py"


def load_anchor(root: Path = ROOT) -> tuple[Callable, str]:
    """The naive step and where it came from: the anchor's own ``step`` when the file can be found.

    ``root/shared/`` first (the git-ignored copy that travels to the GPU machine with the checkout), then
    ``root/../shared/`` (beside the checkout, as in CI). Otherwise ``naive_step``, this file's copy.
    """
    for path, where in ((root / ANCHOR, "./"), (root.parent / ANCHOR, "../")):
        if path.is_file():
            spec = importlib.util.spec_from_file_location("train_step_anchor", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)  # its __main__ guard keeps it from running
            return functools.partial(module.step, mode="naive"), f"step() of {where}{ANCHOR.as_posix()}"
    return naive_step, "bench_train.py's copy of the anchor's step() (shared/bench/ not found)"


def naive_step(model, ids: torch.Tensor, adv: torch.Tensor, eps: float = 0.2) -> torch.Tensor:
    """Copy of the anchor's ``step(mode="naive")``: full logits -> float32 log_softmax -> gather, LUFFY
    token loss averaged over tokens. Used only when shared/bench/train_step_anchor.py is not there."""
    logits = model(input_ids=ids).logits[:, :-1].float()
    logp = torch.log_softmax(logits, -1).gather(-1, ids[:, 1:, None]).squeeze(-1)
    p = logp.exp()
    loss = -(torch.minimum(p * adv, torch.clamp(p, min=1 - eps) * adv)).mean()
    loss.backward()
    return loss


def _samples(run: Run, vocab: int, prompt: int = 128) -> list[Sample]:
    """The step's trajectories, ``per_step`` a GPU (every rank draws them all, then takes its share)."""
    g = torch.Generator().manual_seed(1)
    n_prompt = min(prompt, run.seq // 2)
    return [
        Sample(torch.randint(0, vocab, (run.seq,), generator=g).tolist(), n_prompt,
               float(torch.randn(1, generator=g)), 1.0 / (run.per_step * (run.seq - n_prompt)))
        for _ in range(run.per_step * run.gpus // run.sp)
    ]  # fmt: skip


def _make_step(run: Run, model, device: torch.device, naive: Callable = naive_step, ranks: Ranks = Ranks()):
    """A closure doing one optimizer step of ``run`` (model already built and on the device), and the
    lengths of the trajectories this rank runs in it."""
    vocab = model.config.vocab_size
    if run.mode == "naive":  # the anchor's loop: AdamW(lr=1e-6, fused), step, zero_grad
        opt = torch.optim.AdamW(model.parameters(), lr=1e-6, fused=device.type == "cuda")
        ids = torch.randint(0, vocab, (1, run.seq), device=device)
        adv = torch.randn(1, run.seq - 1, device=device)

        def step() -> None:
            naive(model, ids, adv)
            opt.step()
            opt.zero_grad(set_to_none=True)

        return step, [run.seq]
    # what offcurate train runs: --dtype bf16-mixed (ours) or bf16 (lean, lora), --grad-clip 1, lr 1e-6
    set_attention(model, "offcurate_varlen" if device.type == "cuda" or run.sp > 1 else "sdpa")
    precision = resolve_precision("bf16-mixed" if run.mode in ("ours", "fsdp") else "bf16", device)
    batches = micro_batches(_samples(run, vocab), budget=run.seq * run.per_step)
    mine = my_share(batches, ranks)  # on N ranks: per_step trajectories each, as the trainer splits a step
    objective = ObjectiveConfig()
    if run.mode.startswith("fsdp"):
        policy = shard(model, precision, 1024, device, ranks.sp_group)  # the root the trainer steps
    else:
        policy = PackedPolicy(model, precision, 1024)
    opt = build_optimizer(policy, 1e-6, 0.0, device)  # bf16 weights: stochastic-rounding AdamW

    def step() -> None:
        accumulate(policy, mine, objective, device)
        optimizer_step(policy, opt, grad_clip=1.0)

    return step, [n for b in mine for n in b.seq_lengths]


def _prepare(run: Run, device: torch.device):
    # the same precisions on CPU (--smoke) as on the GPU, so the smoke run covers the same code
    dtype = torch.float32 if run.mode in ("ours", "fsdp") else torch.bfloat16
    model = build(run.shape, device, dtype, run.seq)
    if run.mode == "lora":  # as `offcurate train --lora-r 64` builds it (alpha 2r, every projection)
        model = inner(add_lora(model, 64, 128.0, "all-linear"))
    if run.mode == "naive":  # the anchor's setup
        model.config._attn_implementation = "sdpa"
        if run.ckpt_every:
            model.gradient_checkpointing_enable()
    elif run.ckpt_every:
        enable_checkpointing(model, run.ckpt_every)
    model.train()
    if run.compile:
        for layer in model.model.layers:
            layer.compile(dynamic=False)
    return model


def timing(
    run: Run,
    device: torch.device,
    steps: int,
    warmup: int,
    naive: Callable = naive_step,
    ranks: Ranks = Ranks(),
) -> dict:
    """Seconds a step, this rank's trajectory lengths, parameter counts and peak memory (errors raise).

    On several ranks every one runs the same steps; the clock starts and stops at a barrier on each."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    def together() -> None:
        sync()
        distributed.barrier(ranks)

    model = step = None
    try:
        if run.mode == "lora":
            import peft  # noqa: F401
        model = _prepare(run, device)
        n_params = sum(p.numel() for p in model.parameters())
        n_frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
        step, lengths = _make_step(run, model, device, naive, ranks)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        for i in range(warmup + steps):
            if i == warmup:
                together()
                start = time.perf_counter()
            step()
        together()
        seconds = (time.perf_counter() - start) / steps
    finally:
        model = step = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    peak_gib = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return {
        "seconds": seconds,
        "lengths": lengths,
        "n_params": n_params,
        "n_frozen": n_frozen,
        "peak_gib": peak_gib,
    }


def row(run: Run, timings: list[dict], peak: float | None) -> dict:
    """A table row from every rank's ``timing``: tokens/s summed over the ranks (the slowest rank's
    seconds), MFU per GPU, peak memory the largest of any rank."""
    cfg = SHAPES[run.shape]
    seconds = max(t["seconds"] for t in timings)
    tokens = sum(sum(t["lengths"]) for t in timings)
    flops = sum(
        model_flops(t["n_params"], cfg["num_hidden_layers"], cfg["hidden_size"], t["lengths"], t["n_frozen"])
        for t in timings
    )
    memory = [t["peak_gib"] for t in timings if t["peak_gib"] is not None]
    return {
        "tokens_per_s": tokens / seconds,
        "mfu": flops / seconds / len(timings) / peak if peak else None,
        "peak_gib": max(memory) if memory else None,
    }


def measure(
    run: Run, device: torch.device, peak: float | None, steps: int, warmup: int, naive: Callable = naive_step
) -> None:
    """Fill ``run.result`` with tokens/s, MFU, peak memory (or the error that stopped it), in this process."""
    try:
        run.result = row(run, [timing(run, device, steps, warmup, naive)], peak)
    except ImportError as err:
        run.result = {"error": f"skipped ({err.name} not installed)"}
    except torch.OutOfMemoryError:
        run.result = {"error": "OOM"}
    except Exception as err:  # one failing variant (e.g. compile) must not lose the other rows
        run.result = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:80]}"}


def launch(run: Run, peak: float | None, steps: int, warmup: int, smoke: bool, timeout: int) -> None:
    """Fill ``run.result`` from ``run.gpus`` ranks: this script again under torchrun, as a hidden worker.

    Skipped, with the reason as the row, where the machine has fewer GPUs (``--smoke``: CPU processes)."""
    have = torch.cuda.device_count()
    if not smoke and have < run.gpus:
        run.result = {"error": f"skipped (needs {run.gpus} GPUs, {have} here)"}
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "row.json"
        args = [
            "--worker",
            run.spec(),
            "--worker-out",
            str(out),
            "--steps",
            str(steps),
            "--warmup",
            str(warmup),
        ]
        args += ["--peak", str(peak or 0.0)] + (["--smoke"] if smoke else [])
        error = on_ranks(Path(__file__).resolve(), run.gpus, args, timeout)
        if error is None and not out.is_file():
            error = "rank 0 wrote no row"
        run.result = {"error": error} if error else json.loads(out.read_text())


def worker(args: argparse.Namespace) -> int:
    """One rank of a ``launch``: time the run's steps; rank 0 writes the row from every rank's timing."""
    import torch.distributed as dist

    run = Run(**json.loads(args.worker))
    ranks, device = distributed.start("cpu" if args.smoke else "cuda", run.sp)
    if args.smoke:
        torch.set_num_threads(1)
    mine = timing(run, device, args.steps, args.warmup, naive_step, ranks)
    timings: list = [None] * ranks.world
    dist.all_gather_object(timings, mine)
    if ranks.main:
        args.worker_out.write_text(json.dumps(row(run, timings, args.peak or None)))
    distributed.stop()
    return 0


def one_rank_group(device: torch.device) -> None:
    """A process group of one rank (no torchrun needed), so the fsdp rows run the sharded code path."""
    import torch.distributed as dist

    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)


def table(groups: dict[str, list[Run]]) -> list[str]:
    """Markdown rows; `vs naive` divides tokens/s by the naive row of the same case (one-GPU rows only:
    an N-GPU row's tokens/s is the sum over its GPUs, its MFU is per GPU)."""
    lines = ["| case | mode | tokens/step | tok/s | MFU | peak GiB | vs naive | target |", "|" + "---|" * 8]
    for name, runs in groups.items():
        naive = next((r.result.get("tokens_per_s") for r in runs if r.mode == "naive"), None)
        for r in runs:
            res, tokens = r.result, r.seq * r.per_step * r.gpus // r.sp
            if "error" in res:
                lines.append(f"| {name} | {r.label} | {tokens} | {res['error']} | | | | {r.target} |")
                continue
            mfu = f"{100 * res['mfu']:.1f}%" if res["mfu"] is not None else "-"
            mem = f"{res['peak_gib']:.1f}" if res["peak_gib"] is not None else "-"
            ratio = (
                f"{res['tokens_per_s'] / naive:.2f}x" if naive and r.mode != "naive" and r.gpus == 1 else ""
            )
            lines.append(
                f"| {name} | {r.label} | {tokens} | {res['tokens_per_s']:,.0f} | {mfu} | {mem} "
                f"| {ratio} | {r.target} |"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", help="comma-separated subset of: " + ", ".join(cases()))
    parser.add_argument("--compile", action="store_true", help="add torch.compile variants of every run")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per run (after warmup)")
    parser.add_argument(
        "--warmup", type=int, default=2, help="untimed steps first (compilation happens here)"
    )
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny shapes: check the script end to end")
    parser.add_argument("--append", type=Path, help="append the Markdown table to this file")
    parser.add_argument("--timeout", type=int, default=1200, help="seconds for one N-GPU row (torchrun)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a rank of an N-GPU row: the Run as JSON
    parser.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)  # where rank 0 writes the row
    parser.add_argument("--peak", type=float, help=argparse.SUPPRESS)  # the parent's measured matmul peak
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    if args.smoke:
        device, groups, args.steps, args.warmup = torch.device("cpu"), smoke_cases(), 2, 1
        args.timeout = min(args.timeout, 180)
        torch.set_num_threads(1)  # tiny matrices: threads only add contention
    elif not torch.cuda.is_available():
        print("bench_train.py needs a CUDA GPU (or --smoke for a CPU check)", file=sys.stderr)
        return 2
    else:
        device, groups = torch.device("cuda"), cases()
        if args.cases:
            groups = {k: v for k, v in groups.items() if k in args.cases.split(",")}
    if args.compile:
        groups = with_compile(groups)
    name = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "cpu"
    peak = measure_matmul_peak(device)
    naive, naive_source = load_anchor()
    if naive is naive_step:
        print(f"note: naive rows use {naive_source}; cp -r ../shared shared to run the anchor itself")
    header = f"bench_train.py on {name}, torch {torch.__version__}" + (
        f", measured bf16 matmul peak {peak / 1e12:.0f} TFLOP/s" if peak else " (smoke: no MFU)"
    )
    print(header, flush=True)
    if any(r.mode.startswith("fsdp") and r.gpus == 1 for runs in groups.values() for r in runs):
        one_rank_group(device)
    for runs in groups.values():
        for run in runs:
            if run.gpus > 1:
                launch(run, peak, args.steps, args.warmup, args.smoke, args.timeout)
            else:
                measure(run, device, peak, args.steps, args.warmup, naive)
            print(f"  {run.shape} {run.label} T={run.seq}x{run.per_step}: {run.result}", flush=True)
    lines = [f"naive = {naive_source}", ""] + table(groups) + ["", MFU_NOTE]
    print("\n".join(lines))
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()  # gloo may abort at interpreter exit otherwise
    if args.append:
        with args.append.open("a") as f:
            f.write(f"\n### {time.strftime('%Y-%m-%d')} {header}\n\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    if "--worker" in sys.argv:
        exit_rank(main)  # a rank of an N-GPU row
    sys.exit(main())
