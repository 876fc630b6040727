"""The lean mode's optimizer step (``--dtype bf16``) against torchao's and torch's AdamW, in one run.

    python bench/bench_lean_optim.py                        # GPU: Qwen2.5-1.5B and 7B parameter shapes
    python bench/bench_lean_optim.py --cases cpu-17M        # CPU: 4 x 2048² + 8 x 2048 parameters
    python bench/bench_lean_optim.py --append BENCHMARKS.md # also append the table as Markdown
    python bench/bench_lean_optim.py --smoke                # CPU, a few tiny tensors: checks the script

Issue 14 asked to measure, then choose, between the trainer's own stochastic-rounding AdamW and torchao's
AdamW with ``bf16_stochastic_round=True``. Rows, each the median of ``--steps`` timed steps after warmup
(compilation included in warmup) on the same bf16 parameters and gradients:
adamw-fp32   torch.optim.AdamW on fp32 copies (fused on CUDA): the cost of the default mode's update
sr-eager     offcurate's StochasticRoundingAdamW, write-back in eager mode (what CPU runs)
sr-fused     the same with the write-back compiled into one kernel (what CUDA runs)
torchao-sr   torchao.optim._AdamW(bf16_stochastic_round=True), when torchao is installed
Random-init shapes (no weights needed); peak memory on CUDA.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
from checkout import use_this_checkout
from train_cases import SHAPES

use_this_checkout()

from offcurate.train import optim  # noqa: E402
from offcurate.train.optim import StochasticRoundingAdamW  # noqa: E402

MODES = ("adamw-fp32", "sr-eager", "sr-fused", "torchao-sr")


def parameter_shapes(case: str) -> list[tuple[int, ...]]:
    """The shapes of a Qwen2.5 model's parameters (built on the meta device: no memory), or a small set."""
    if case == "cpu-17M":
        return [(2048, 2048)] * 4 + [(2048,)] * 8
    if case == "tiny":
        return [(64, 64)] * 2 + [(64,)] * 2 + [(1,)]
    from transformers import Qwen2Config, Qwen2ForCausalLM

    with torch.device("meta"):
        model = Qwen2ForCausalLM(Qwen2Config(**SHAPES[case.removeprefix("qwen-")]))
    return [tuple(p.shape) for p in model.parameters()]


def _optimizer(mode: str, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if mode == "adamw-fp32":
        return torch.optim.AdamW(params, lr=1e-6, weight_decay=0.0, fused=params[0].is_cuda)
    if mode == "torchao-sr":
        from torchao.optim import _AdamW

        return _AdamW(params, lr=1e-6, weight_decay=0.0, bf16_stochastic_round=True)
    return StochasticRoundingAdamW(params, lr=1e-6, weight_decay=0.0)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def measure(case: str, mode: str, device: torch.device, steps: int, warmup: int) -> dict:
    """Median seconds of one optimizer step, and peak memory (CUDA)."""
    dtype = torch.float32 if mode == "adamw-fp32" else torch.bfloat16
    shapes = parameter_shapes(case)
    gen = torch.Generator(device).manual_seed(0)
    params = [
        torch.nn.Parameter(torch.randn(s, generator=gen, device=device).mul_(0.02).to(dtype)) for s in shapes
    ]
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen, device=device).mul_(1e-3).to(dtype)
    opt = _optimizer(mode, params)
    fused = optim.fused_stochastic_bf16
    if mode == "sr-fused":  # compile on any device (CUDA does by default; CPU needs a C++ compiler)
        compiled = torch.compile(optim.stochastic_bf16, dynamic=True)
        optim.fused_stochastic_bf16 = compiled
    elif mode == "sr-eager":
        optim.fused_stochastic_bf16 = optim.stochastic_bf16
    try:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        times = []
        for i in range(warmup + steps):
            _sync(device)
            start = time.perf_counter()
            opt.step()
            _sync(device)
            if i >= warmup:
                times.append(time.perf_counter() - start)
    finally:
        optim.fused_stochastic_bf16 = fused
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    n = sum(p.numel() for p in params)
    return {"case": case, "mode": mode, "params": n, "ms": 1e3 * statistics.median(times), "peak": peak}


def table(rows: list[dict]) -> list[str]:
    lines = ["| case | mode | parameters | ms / step | vs sr-eager | peak GiB |", "|" + "---|" * 6]
    eager = {r["case"]: r["ms"] for r in rows if r["mode"] == "sr-eager" and "ms" in r}
    for r in rows:
        if "ms" not in r:
            lines.append(f"| {r['case']} | {r['mode']} | | skipped: {r['skipped']} | | |")
            continue
        ratio = f"{eager[r['case']] / r['ms']:.1f}x" if r["case"] in eager else ""
        peak = f"{r['peak']:.1f}" if r["peak"] is not None else ""
        size = f"{r['params'] / 1e6:,.0f}M" if r["params"] >= 1e6 else f"{r['params']:,}"
        lines.append(f"| {r['case']} | {r['mode']} | {size} | {r['ms']:,.1f} | {ratio} | {peak} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cases", default=None, help="comma-separated: qwen-1.5B, qwen-7B, cpu-17M, tiny")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--append", default=None, help="append the Markdown table to this file")
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny tensors, 1 step")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() and not args.smoke else "cpu")
    cases = args.cases or ("qwen-1.5B,qwen-7B" if device.type == "cuda" else "cpu-17M")
    if args.smoke:
        cases, args.steps, args.warmup = "tiny", 1, 1
    rows = []
    for case in cases.split(","):
        for mode in args.modes.split(","):
            try:
                if mode == "torchao-sr":
                    import torchao  # noqa: F401
                rows.append(measure(case, mode, device, args.steps, args.warmup))
            except ImportError as err:
                rows.append({"case": case, "mode": mode, "skipped": f"{err.name} not installed"})
            if device.type == "cuda":
                torch.cuda.empty_cache()
            print(rows[-1], flush=True)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "CPU"
    header = f"{name}, torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    lines = [header, "", *table(rows)]
    print("\n".join(lines))
    if args.append:
        with open(args.append, "a") as fh:
            fh.write("\n" + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
