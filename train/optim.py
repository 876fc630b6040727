"""Optimizer, learning-rate schedule and gradient clipping for ``offcurate train``.

    optimizer = build_optimizer(model, lr=1e-6, weight_decay=0.0, device=device)
    scheduler = build_scheduler(optimizer, warmup_steps=10, total_steps=500)

AdamW (fused kernel on CUDA: one launch for all parameters instead of a loop), biases and norms without
weight decay, linear warmup then cosine decay to zero (``objective.lr_multiplier``, a pure function), and
clipping of the global gradient norm, whose pre-clip value is logged every step.

bf16 weights (``--dtype bf16``, the lean mode: 2 + 2 + 4 bytes a parameter for weights, gradients and
AdamW states instead of 4 + 4 + 8) get ``StochasticRoundingAdamW``: with round-to-nearest an update below
half a bf16 spacing is lost (at |w| ≈ 0.02 the spacing is 2⁻¹³ ≈ 1.2e-4, so lr 1e-6 never moves a weight,
and β₂ = 0.999 never moves v); rounding up or down at random, in proportion, lands every update on average.
"""

from __future__ import annotations

import math

import torch

from .objective import lr_multiplier


def build_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device
) -> torch.optim.Optimizer:
    """AdamW over the trainable parameters; 1-D tensors (biases, norm scales) get no weight decay.

    bf16 parameters get ``StochasticRoundingAdamW`` (same update, stochastically rounded), others
    torch's AdamW.
    """
    decay, no_decay = [], []
    for p in model.parameters():
        if p.requires_grad:
            (no_decay if p.ndim < 2 else decay).append(p)
    groups = [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if any(p.dtype == torch.bfloat16 for p in decay + no_decay):
        return StochasticRoundingAdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8)
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


def round_stochastic_(target: torch.Tensor, value: torch.Tensor) -> None:
    """``target`` (bf16) ← ``value`` (fp32) rounded down or up at random, up with probability equal to
    the fraction of the bf16 spacing ``value`` lies above the lower neighbour: unbiased, E[target] = value.

    bf16 is the top half of an fp32 bit pattern: adding a uniform 16-bit number to the lower half and
    truncating it does exactly that (for either sign, as the pattern is sign-magnitude). Uses the global
    torch RNG of the device, whose state checkpoints store, so a resumed run rounds the same way.
    """
    noise = torch.randint(0, 1 << 16, value.shape, dtype=torch.int32, device=value.device)
    bits = value.view(torch.int32).add(noise).bitwise_and_(-65536)  # -65536 = 0xFFFF0000
    target.copy_(bits.view(torch.float32))


class StochasticRoundingAdamW(torch.optim.Optimizer):
    """torch's AdamW update computed in fp32, written back to bf16 weights and states stochastically.

    The arithmetic is torch.optim.AdamW's (decoupled weight decay, bias-corrected moments, eps outside
    the square root), so on fp32 parameters, where the write-back is a plain copy, the two agree. Large
    tensors are processed ``chunk`` elements at a time: the fp32 temporaries stay small (the embedding
    of a 7B is 545M elements).
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 chunk: int = 1 << 24):  # fmt: skip
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.chunk = chunk

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = state["step"].item()
                step_size = lr / (1 - beta1**t)
                bias_correction2_sqrt = (1 - beta2**t) ** 0.5
                views = (p.view(-1), p.grad.view(-1), state["exp_avg"].view(-1), state["exp_avg_sq"].view(-1))
                for start in range(0, p.numel(), self.chunk):
                    w, g, m, v = (x[start : start + self.chunk] for x in views)
                    g32, w32, m32, v32 = g.float(), w.float(), m.float(), v.float()
                    w32.mul_(1 - lr * decay)
                    m32.lerp_(g32, 1 - beta1)
                    v32.mul_(beta2).addcmul_(g32, g32, value=1 - beta2)
                    denom = (v32.sqrt() / bias_correction2_sqrt).add_(eps)
                    w32.addcdiv_(m32, denom, value=-step_size)
                    for target, value in ((w, w32), (m, m32), (v, v32)):
                        if target.dtype == torch.bfloat16:
                            round_stochastic_(target, value)
                        else:
                            target.copy_(value)
        return loss
