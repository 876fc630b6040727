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
The random bits are a hash of (seed, parameter, step, element position in the whole tensor), not draws from
an RNG stream: a sharded run (each rank updates its own slice) then rounds every element exactly as one
process would, whatever the number of ranks, and a resumed run needs no RNG state to round the same way.
(The hash changed once, in issue 14's lean-optimizer work: a lean checkpoint written before that resumes
fine, but no longer bit for bit.)
"""

from __future__ import annotations

import math
import warnings

import torch

from .objective import lr_multiplier


def build_optimizer(
    model: torch.nn.Module, lr: float, weight_decay: float, device: torch.device, seed: int = 0
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
        return StochasticRoundingAdamW(groups, lr=lr, betas=(0.9, 0.999), eps=1e-8, seed=seed)
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
    norm = torch.nn.utils.clip_grad_norm_(params, limit)
    full = getattr(norm, "full_tensor", None)  # sharded gradients: a DTensor, summed over the ranks here
    return float(full() if full is not None else norm)


_M32 = 0xFFFFFFFF
# odd multipliers below 2**31: a 32-bit word times one stays below 2**63, so int64 products never overflow
_WEYL, _MIX1, _MIX2 = 0x5BD1E995, 0x7FEB352D, 0x2C1B3C6D


def _mix32(x: int) -> int:
    """The integer hash below, on one Python int: mixes (seed, parameter, step) into a key."""
    x ^= x >> 16
    x = (x * _MIX1) & _M32
    x ^= x >> 15
    x = (x * _MIX2) & _M32
    return x ^ (x >> 16)


def _signed32(key: int) -> int:
    """The low 32 bits of ``key`` as a signed 32-bit int: the hash only reads those bits, and a compiled
    kernel may type a scalar argument as int32 (a key of 2**31 or more would not fit)."""
    return ((key & _M32) ^ (1 << 31)) - (1 << 31)


def rounding_noise(key: int, start: int, n: int, device: torch.device) -> torch.Tensor:
    """16 random bits (int32 in [0, 65536)) for elements ``start .. start+n-1`` of a tensor, given ``key``.

    A pure function of (key, position): any slice of a tensor gets the bits the whole tensor would. A
    Weyl step then a lowbias32-style xor-shift-multiply hash (Chris Wellons' construction) in int64.
    """
    x = torch.arange(start, start + n, dtype=torch.int64, device=device)
    x = ((x & _M32) * _WEYL + key) & _M32  # distinct positions (mod 2**32) -> distinct words
    x ^= x >> 16
    x = (x * _MIX1) & _M32
    x ^= x >> 15
    x = (x * _MIX2) & _M32
    x ^= x >> 16
    return (x >> 16).to(torch.int32)


def round_stochastic_(target: torch.Tensor, value: torch.Tensor, noise: torch.Tensor | None = None) -> None:
    """``target`` (bf16) ← ``value`` (fp32) rounded down or up at random, up with probability equal to
    the fraction of the bf16 spacing ``value`` lies above the lower neighbour: unbiased, E[target] = value.

    bf16 is the top half of an fp32 bit pattern: adding a uniform 16-bit number to the lower half and
    truncating it does exactly that (for either sign, as the pattern is sign-magnitude). ``noise``: the
    16-bit numbers (``rounding_noise``); by default drawn from the device's torch RNG.
    """
    if noise is None:
        noise = torch.randint(0, 1 << 16, value.shape, dtype=torch.int32, device=value.device)
    target.copy_(_round_bits(value, noise))


def _round_bits(value: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    return value.view(torch.int32).add(noise).bitwise_and(-65536).view(torch.float32)  # -65536 = 0xFFFF0000


def stochastic_bf16(value: torch.Tensor, key: int, start: int) -> torch.Tensor:
    """``value`` (fp32, flat) rounded to bf16 with ``rounding_noise(key, start, ...)``: the write-back."""
    return _round_bits(value, rounding_noise(key, start, value.numel(), value.device)).bfloat16()


_compiled: list = []  # [the compiled write-back], or [None] once compiling failed on this machine


def fused_stochastic_bf16(value: torch.Tensor, key: int, start: int) -> torch.Tensor:
    """``stochastic_bf16`` as one kernel on CUDA (``torch.compile``), eager elsewhere.

    Eager, the hash makes ~15 passes over int64 temporaries per element; fused it reads 4 bytes and
    writes 2. Integer and bit operations only, so the kernel's result is the eager one bit for bit
    (tests/test_train_optim.py compiles it on CPU to check): runs on either path round alike. Where it
    cannot compile (no Triton, say) the run goes on eager, slower, after one warning.
    """
    if value.device.type != "cuda":
        return stochastic_bf16(value, key, start)
    return _compiled_or_eager(value, key, start)


def _compiled_or_eager(value: torch.Tensor, key: int, start: int) -> torch.Tensor:
    if not _compiled:
        _compiled.append(torch.compile(stochastic_bf16, dynamic=True))
    if _compiled[0] is not None:
        try:
            return _compiled[0](value, key, start)
        except torch.OutOfMemoryError:
            raise  # the eager path needs more memory, not less
        except Exception as err:  # noqa: BLE001 - any compiler failure: the eager path is the same math
            warnings.warn(f"lean optimizer: eager write-back, torch.compile failed ({err})", stacklevel=2)
            _compiled[0] = None
    return stochastic_bf16(value, key, start)


def _local(t: torch.Tensor) -> torch.Tensor:
    """The local shard of a DTensor (FSDP2 parameter, gradient or state), a view; else ``t``."""
    to_local = getattr(t, "to_local", None)
    return to_local() if to_local is not None else t


def _global_start(p: torch.Tensor) -> int:
    """Flat position, in the whole tensor, of the first element of this rank's shard (0 unsharded)."""
    if not hasattr(p, "to_local"):
        return 0
    from torch.distributed.tensor import Shard
    from torch.distributed.tensor._utils import compute_local_shape_and_global_offset

    if any(isinstance(pl, Shard) and pl.dim != 0 for pl in p.placements):
        raise ValueError("stochastic rounding expects parameters sharded on dim 0 (FSDP2's default)")
    _, offset = compute_local_shape_and_global_offset(p.shape, p.device_mesh, p.placements)
    return offset[0] * (p[0].numel() if p.ndim else 1)


class StochasticRoundingAdamW(torch.optim.Optimizer):
    """torch's AdamW update computed in fp32, written back to bf16 weights and states stochastically.

    The arithmetic is torch.optim.AdamW's (decoupled weight decay, bias-corrected moments, eps outside
    the square root), so on fp32 parameters, where the write-back is a plain copy, the two agree. Large
    tensors are processed ``chunk`` elements at a time: the fp32 temporaries stay small (the embedding
    of a 7B is 545M elements).
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0,
                 chunk: int = 1 << 24, seed: int = 0):  # fmt: skip
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.chunk, self.seed = chunk, seed

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        number = -1
        for group in self.param_groups:
            lr, (beta1, beta2), eps, decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                number += 1  # the parameter's place in the optimizer: the same on every rank
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
                tensors = (p, p.grad, state["exp_avg"], state["exp_avg_sq"])
                views = [_local(x).view(-1) for x in tensors]
                offset = _global_start(p)
                keys = [_signed32(_mix32(_mix32(_mix32(self.seed) ^ number) ^ int(t)) + k) for k in range(3)]
                for start in range(0, views[0].numel(), self.chunk):
                    w, g, m, v = (x[start : start + self.chunk] for x in views)
                    g32, w32, m32, v32 = g.float(), w.float(), m.float(), v.float()
                    w32.mul_(1 - lr * decay)
                    m32.lerp_(g32, 1 - beta1)
                    v32.mul_(beta2).addcmul_(g32, g32, value=1 - beta2)
                    denom = (v32.sqrt() / bias_correction2_sqrt).add_(eps)
                    w32.addcdiv_(m32, denom, value=-step_size)
                    for key, target, value in zip(keys, (w, m, v), (w32, m32, v32)):
                        if target.dtype == torch.bfloat16:
                            target.copy_(fused_stochastic_bf16(value, key, offset + start))
                        else:
                            target.copy_(value)
        return loss
