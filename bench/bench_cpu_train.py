"""CPU training speed: the trainer's step under each attention / checkpointing choice, measured alternately.

    python bench/bench_cpu_train.py                       # README default train + the toy, 3 rounds
    python bench/bench_cpu_train.py --rounds 1 --steps 2  # quicker

Why: on a CPU ``--attn auto`` used to pick SDPA, which gets a dense [T, T] block-diagonal mask over the
packed micro-batch (T = 32K tokens: 4 GB a layer's mask in fp32), and ``--attn varlen`` looped SDPA
over the trajectories one by one. Now ``auto`` picks varlen on the CPU, which pads the trajectories into
batches of like lengths and runs one causal SDPA per batch (``train/attention.py``). CUDA is untouched.

Each (workload, variant) runs in a fresh process (so peak RSS is its own), variants alternating within a
round so that load from other processes falls on all of them alike; the table gives the median tokens/s
over rounds and the largest peak RSS. Workloads: ``readme`` is the README's ``offcurate train --model
tiny-random`` on the embedded sample (default options: 8 questions a step, 32K-token micro-batches);
``toy`` is the toy recipe's data (toy base model, 8 questions x 8 traces of ~75 tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

VARIANTS = {
    "sdpa (old auto)": dict(attn="sdpa", ckpt=True, loop=False),
    "varlen loop (old --attn varlen)": dict(attn="varlen", ckpt=True, loop=True),
    "varlen padded (new auto)": dict(attn="auto", ckpt=True, loop=False),
    "new auto, --no-gradient-checkpointing": dict(attn="auto", ckpt=False, loop=False),
}


def _loop_attend(q, k, v, cu, max_len, scaling):
    """The CPU branch as it was before: causal SDPA over each trajectory in turn."""
    import torch
    import torch.nn.functional as F

    n_rep = q.shape[1] // k.shape[1]
    bounds = cu.tolist()
    parts = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        qs, ks, vs = (x[a:b].transpose(0, 1) for x in (q, k, v))
        if n_rep > 1:
            ks, vs = ks.repeat_interleave(n_rep, dim=0), vs.repeat_interleave(n_rep, dim=0)
        parts.append(
            F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scaling).transpose(0, 1)
        )
    return torch.cat(parts, 0)


def measure(workload: str, variant: str, model: str, voted: str, steps: int, threads: int) -> dict:
    """One process: load, one warm-up step, ``steps`` timed steps (as ``offcurate train`` runs them)."""
    import torch

    from offcurate.train import attention
    from offcurate.train.compute import accumulate, micro_batches, optimizer_step
    from offcurate.train.data import ChatEncoder, RowReader, open_voted
    from offcurate.train.model import (
        PackedPolicy,
        enable_checkpointing,
        load_model,
        load_tokenizer,
        resolve_precision,
    )
    from offcurate.train.objective import ObjectiveConfig
    from offcurate.train.optim import build_optimizer
    from offcurate.train.steps import StepStream

    torch.set_num_threads(threads)
    opts = VARIANTS[variant]
    if opts["loop"]:
        attention._attend = _loop_attend
    device = torch.device("cpu")
    precision = resolve_precision("auto", device)
    net = load_model(model, precision, device, opts["attn"]).train()
    if opts["ckpt"]:
        enable_checkpointing(net)
    policy = PackedPolicy(net, precision, 1024)
    optimizer = build_optimizer(policy, 1e-6, 0.0, device)
    index = open_voted(Path(voted))
    objective = ObjectiveConfig()
    stream = StepStream(
        index, RowReader(index.shards), ChatEncoder(load_tokenizer(model)), objective, 8, 32768, epochs=None
    )
    tokens, seconds = 0, 0.0
    for step in range(steps + 1):
        batch = stream.next_step()
        start = time.perf_counter()
        stats = accumulate(policy, micro_batches(batch.samples, 32768), objective, device)
        optimizer_step(policy, optimizer, 1.0)
        if step:  # the first step warms up allocators and kernels
            seconds += time.perf_counter() - start
            tokens += sum(stats.seq_lengths)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB (Linux)
    return {"workload": workload, "variant": variant, "tokens_per_s": tokens / seconds, "peak_rss_gib": peak}


def _prepare(folder: Path) -> dict[str, tuple[str, str]]:
    """The two workloads' (model, voted input), built once into ``folder``."""
    from offcurate.data.toy import ToySpec, write_toy_data
    from offcurate.train.tiny import write_tiny_model
    from offcurate.train.toy_base import BaseSpec, build_toy_base

    demo = folder / "demo"
    subprocess.run([sys.executable, "-m", "offcurate", "pipeline", "-o", str(demo)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    tiny = write_tiny_model(folder / "tiny-random")
    toy = folder / "toy"
    write_toy_data(toy, 0, ToySpec(warmup_per_skill=50))
    base = build_toy_base(toy, folder / "toy-base", 0, BaseSpec(steps=1))  # weights do not matter here
    pipeline = [sys.executable, "-m", "offcurate", "pipeline", "-i", str(toy / "raw"), "-o", str(toy / "run")]
    subprocess.run(pipeline, check=True, stdout=subprocess.DEVNULL)
    return {"readme": (str(tiny), str(demo / "voted")), "toy": (str(base), str(toy / "run" / "voted"))}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workloads", default="readme,toy")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one measurement (JSON args)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(**json.loads(args.one))))
        return
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workloads = _prepare(Path(tmp))
        for _ in range(args.rounds):
            for workload in args.workloads.split(","):
                model, voted = workloads[workload]
                for variant in VARIANTS:
                    one = dict(workload=workload, variant=variant, model=model, voted=voted,
                               steps=args.steps, threads=args.threads)  # fmt: skip
                    out = subprocess.run([sys.executable, __file__, "--one", json.dumps(one)], check=True,
                                         capture_output=True, text=True).stdout  # fmt: skip
                    row = json.loads(out.strip().splitlines()[-1])
                    results.setdefault((workload, variant), []).append(row)
                    print(json.dumps(row), flush=True)
    load = os.getloadavg()
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs"
    print(
        f"\n{machine}, torch threads {args.threads}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print("| workload | variant | tokens/s (median) | peak RSS GiB |\n|---|---|---:|---:|")
    for (workload, variant), rows in results.items():
        tps = statistics.median(r["tokens_per_s"] for r in rows)
        peak = max(r["peak_rss_gib"] for r in rows)
        print(f"| {workload} | {variant} | {tps:,.0f} | {peak:.2f} |")


if __name__ == "__main__":
    main()
