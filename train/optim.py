"""Optimizer, learning-rate schedule and gradient clipping for ``offcurate train``.

    optimizer = build_optimizer(model, lr=1e-6, weight_decay=0.0, device=device)
    scheduler = build_scheduler(optimizer, warmup_steps=10, total_steps=500)

AdamW (fused kernel on CUDA: one launch for all parameters instead of a loop), biases and norms without
weight decay, linear warmup then cosine decay to zero (``objective.lr_multiplier``, a pure function), and
clipping of the global gradient norm, whose pre-clip value is logged every step.
"""

from __future__ import annotations

import math

import torch

from .objective import lr_multiplier


def build_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.AdamW:
    """AdamW over the trainable parameters; 1-D tensors (biases, norm scales) get no weight decay."""
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    fused = device.type == "cuda"
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, fused=fused)


def build_scheduler(
    optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Warmup + cosine as a LambdaLR (its state_dict is what a checkpoint stores)."""
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_multiplier(step, warmup_steps, total_steps)
    )


def clip_gradients(model: torch.nn.Module, max_norm: float) -> float:
    """Clip the global L2 norm to ``max_norm`` (<= 0: no clipping); return the norm before clipping."""
    params = [p for p in model.parameters() if p.grad is not None]
    if not params:
        return 0.0
    limit = max_norm if max_norm > 0 else math.inf
    return float(torch.nn.utils.clip_grad_norm_(params, limit))


def optimizer_in_backward(
    model: torch.nn.Module, lr: float, weight_decay: float = 0.0
) -> list[torch.optim.AdamW]:
    """Lean mode: each parameter is updated by its own AdamW as soon as its gradient is complete.

    The gradient is freed right after, so at most a layer's gradients exist at once (saves 2 bytes a
    parameter in bf16). Only valid when a step is one backward pass (no accumulation) and without global
    gradient clipping; the schedule is the caller's (set ``lr`` on each optimizer).
    """
    optimizers = []
    for p in model.parameters():
        if not p.requires_grad:
            continue
        decay = weight_decay if p.ndim >= 2 else 0.0
        opt = torch.optim.AdamW([p], lr=lr, weight_decay=decay, fused=p.is_cuda)

        def step(param: torch.Tensor, opt: torch.optim.AdamW = opt) -> None:
            opt.step()
            opt.zero_grad(set_to_none=True)

        p.register_post_accumulate_grad_hook(step)
        optimizers.append(opt)
    return optimizers
