"""MFU and peak memory, torch only (the trainer's metrics and bench/bench_train.py share them).

MFU follows shared/bench/train_step_anchor.py: model FLOPs = 6·N per token plus 6·L·l²·d of attention per
trajectory of length l (recomputation by checkpointing is not counted), divided by the *measured* bf16
matmul peak of the GPU (an 8192³ product), not the datasheet number. On CPU MFU is None.
"""

from __future__ import annotations

import resource
import sys
import time

import torch


def measure_matmul_peak(device: torch.device, size: int = 8192, repeats: int = 20) -> float | None:
    """FLOP/s of a bf16 size³ matrix product on ``device`` (None on CPU: MFU is a GPU notion here)."""
    if device.type != "cuda":
        return None
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn_like(a)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    flops = repeats * 2 * size**3 / (time.perf_counter() - start)
    del a, b
    torch.cuda.empty_cache()
    return flops


def model_flops(
    n_params: int, n_layers: int, hidden: int, seq_lengths: list[int], n_frozen: int = 0
) -> float:
    """6N per token + 6·L·l²·d per trajectory: forward + backward matmul FLOPs of one pass.

    A frozen weight (the base of a LoRA model; ``n_frozen`` of the ``n_params``) costs 4 per token, not 6:
    forward and the gradient w.r.t. its input, no gradient w.r.t. the weight. Counting it as 6 would
    overstate a LoRA run's MFU by about 1.5x.
    """
    tokens = sum(seq_lengths)
    attention = sum(6.0 * n_layers * n * n * hidden for n in seq_lengths)
    return (6.0 * n_params - 2.0 * n_frozen) * tokens + attention


def utilisation(flops: float, seconds: float, peak: float | None, devices: int = 1) -> float | None:
    """MFU of a step: its FLOPs over the time it took on ``devices`` devices of ``peak`` FLOP/s each.

    A step sharded over N ranks did all of its FLOPs on N devices: counting one device's peak would
    overstate MFU N times.
    """
    if not peak:
        return None
    return flops / seconds / (peak * devices)


def peak_memory_gib(device: torch.device) -> float:
    """Peak allocated GPU memory since the last reset, or the process's peak resident set on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**30 if sys.platform == "darwin" else rss / 2**20


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
