"""Attention for packed rows: per-trajectory causal attention from ``cu_seqlens``, never a mask.

    implementation = pick_attention("auto", device, config)   # "offcurate_varlen" on CUDA and CPU
    set_attention(model, implementation)

Packed rows need attention that stops at trajectory boundaries: on CUDA the ``offcurate_varlen`` attention
calls PyTorch's flash varlen kernel with ``cu_seqlens`` (no mask at all); on CPU it pads the trajectories
into batches of like lengths and runs one causal SDPA per batch (right padding needs no mask); ``sdpa``
gets the block-diagonal mask transformers derives from the restarting position ids (dense: T² a layer).
"""

from __future__ import annotations

import importlib.util
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from ..curate.io.errors import OffcurateError
from . import ulysses

if TYPE_CHECKING:
    from transformers import PretrainedConfig, PreTrainedModel

VARLEN = "offcurate_varlen"
ATTN_CHOICES = ("auto", "sdpa", "varlen", "flash_attention_2", "eager")


def _find_varlen_kernel() -> tuple[Callable | None, dict[str, Any], bool, bool]:
    """PyTorch's flash varlen attention (torch >= 2.9), its causal keyword, GQA and scale support.

    The keywords moved between releases (``is_causal`` first, then ``window_size=(-1, 0)``).
    """
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None, {}, False, False
    params = inspect.signature(varlen_attn).parameters
    if "window_size" in params:
        causal = {"window_size": (-1, 0)}
    elif "is_causal" in params:
        causal = {"is_causal": True}
    else:
        return None, {}, False, False
    return varlen_attn, causal, "enable_gqa" in params, "scale" in params


# looked up once at import, so nothing is inspected inside a compiled region
_VARLEN_KERNEL, _VARLEN_CAUSAL, _VARLEN_GQA, _VARLEN_SCALE = _find_varlen_kernel()


def _kernel_for(q: torch.Tensor) -> Callable | None:
    """The flash varlen kernel when it can run on ``q`` (CUDA, half precision), else None (SDPA loop)."""
    if q.is_cuda and q.dtype in (torch.bfloat16, torch.float16):
        return _VARLEN_KERNEL
    return None


def varlen_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """A transformers attention function for packed rows: per-trajectory causal attention via cu_seqlens.

    query [1, H, T, D], key/value [1, Hkv, T, D] -> [1, T, H, D]. On CUDA one flash varlen call; elsewhere
    causal SDPA over the trajectories padded into batches of like lengths (``length_groups``).

    With ``sp_group`` (sequence parallelism, ``ulysses``) each rank holds T/K tokens of the row: an
    all-to-all trades them for all T tokens of H/K heads, attention runs on those, and a second
    all-to-all trades back. ``cu_seq_lens_q`` then describes the whole row.
    """
    cu = kwargs.get("cu_seq_lens_q")
    if cu is None:
        raise ValueError("offcurate_varlen attention needs cu_seq_lens_q (call through packed_logprobs)")
    if kwargs.get("sliding_window") is not None:
        raise ValueError(
            "offcurate_varlen attention does not support sliding-window layers (use --attn sdpa)"
        )
    if query.shape[0] != 1:
        raise ValueError("offcurate_varlen attention expects one packed row (batch size 1)")
    q, k, v = (x[0].transpose(0, 1) for x in (query, key, value))  # [T, H, D]
    device_type = q.device.type
    if torch.is_autocast_enabled(device_type):  # rotary embeddings promote q, k to fp32 under autocast
        dtype = torch.get_autocast_dtype(device_type)
        q, k, v = q.to(dtype), k.to(dtype), v.to(dtype)
    group = kwargs.get("sp_group")
    if group is None:
        return _attend(q, k, v, cu, kwargs.get("max_length_q"), scaling).unsqueeze(0), None
    q, k, v = ulysses.heads_for_sequence(q, k, v, group)
    out = _attend(q, k, v, cu, kwargs.get("max_length_q"), scaling)
    return ulysses.sequence_for_heads(out, group).unsqueeze(0), None


def _attend(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, cu: torch.Tensor, max_len, scaling: float | None
) -> torch.Tensor:
    """Causal attention within each [cu[i], cu[i+1]) span: [T, H, D], [T, Hkv, D] -> [T, H, D]."""
    n_rep = q.shape[1] // k.shape[1]
    kernel = _kernel_for(q)
    if kernel is not None:
        max_len = int(max_len or int((cu[1:] - cu[:-1]).max()))
        extra = dict(_VARLEN_CAUSAL)
        if scaling is not None and _VARLEN_SCALE:
            extra["scale"] = scaling  # without the keyword the kernel uses 1/sqrt(D), Qwen's scaling too
        if n_rep > 1:
            if _VARLEN_GQA:
                extra["enable_gqa"] = True
            else:
                k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
        return kernel(q.contiguous(), k.contiguous(), v.contiguous(), cu, cu, max_len, max_len, **extra)
    bounds = cu.tolist()
    if bounds[-1] != q.shape[0]:  # e.g. a model that forwards cu_seqlens but drops sp_group
        raise ValueError(f"cu_seqlens cover {bounds[-1]} tokens, the row holds {q.shape[0]}")
    if n_rep > 1:
        k, v = k.repeat_interleave(n_rep, dim=1), v.repeat_interleave(n_rep, dim=1)
    lengths = [b - a for a, b in zip(bounds[:-1], bounds[1:])]
    parts = [
        _attend_padded(q, k, v, [bounds[i] for i in group], [lengths[i] for i in group], scaling)
        for group in length_groups(lengths)
    ]
    if len(parts) == 1:  # one group holds every trajectory in row order: its rows are the row
        return parts[0][0]
    return torch.cat([out for out, _ in parts])[torch.argsort(torch.cat([where for _, where in parts]))]


def length_groups(lengths: list[int], waste: float = 0.25) -> list[list[int]]:
    """Trajectory indices grouped by length, so padding each group to its longest adds at most ``waste``
    of the group's tokens (longest first; a group of one has no padding)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    groups: list[list[int]] = []
    size = 0
    for i in order:
        if groups and lengths[groups[-1][0]] * (len(groups[-1]) + 1) <= (1 + waste) * (size + lengths[i]):
            groups[-1].append(i)
            size += lengths[i]
        else:
            groups.append([i])
            size = lengths[i]
    return [sorted(g) for g in groups]


def _attend_padded(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, starts: list[int], lengths: list[int], scaling
) -> tuple[torch.Tensor, torch.Tensor]:
    """Causal SDPA over trajectories padded into one [n, H, L, D] batch (the CPU path: one call, no mask).

    Right padding needs no mask: a real query at position j attends to keys 0..j only, all real; the
    padded queries' rows are dropped. Returns the real rows, [sum(lengths), H, D], and their row positions.
    """
    device = q.device
    start = torch.tensor(starts, device=device)[:, None]
    length = torch.tensor(lengths, device=device)[:, None]
    offset = torch.arange(max(lengths), device=device)[None, :]
    index = start + torch.minimum(offset, length - 1)  # [n, L], pads repeat the last real token
    real = offset < length
    qs, ks, vs = (x[index].permute(0, 2, 1, 3) for x in (q, k, v))  # [n, H, L, D]
    out = F.scaled_dot_product_attention(qs, ks, vs, is_causal=True, scale=scaling).permute(0, 2, 1, 3)
    return out[real], index[real]


def register_varlen() -> bool:
    """Register ``offcurate_varlen`` with transformers (attention + "no mask" mask function)."""
    try:
        from transformers import AttentionInterface
        from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, flash_attention_mask
    except ImportError:
        return False
    AttentionInterface.register(VARLEN, varlen_attention)
    ALL_MASK_ATTENTION_FUNCTIONS.register(VARLEN, flash_attention_mask)
    return True


def pick_attention(name: str, device: torch.device, config: PretrainedConfig) -> str:
    """``auto``: varlen (no sliding window) on CUDA when PyTorch has the flash kernel, and on the CPU (padded
    batches: SDPA with the dense mask of a packed row is ~8x slower and ~3x the memory); else SDPA."""
    if name not in ATTN_CHOICES:
        raise OffcurateError(f"--attn must be one of {', '.join(ATTN_CHOICES)}, got {name!r}")
    if name == "auto":
        sliding = getattr(config, "use_sliding_window", False)
        cuda = device.type == "cuda" and _VARLEN_KERNEL is not None
        name = "varlen" if (cuda or device.type == "cpu") and not sliding else "sdpa"
    if name == "flash_attention_2" and importlib.util.find_spec("flash_attn") is None:
        raise OffcurateError("--attn flash_attention_2 needs the flash-attn package (or use --attn auto)")
    if name == "varlen":
        if not register_varlen():
            raise OffcurateError("--attn varlen needs transformers >= 4.48 (AttentionInterface)")
        return VARLEN
    return name


def set_attention(model: PreTrainedModel, implementation: str) -> None:
    """Switch the attention implementation of a loaded model (registered names included)."""
    if implementation == VARLEN:
        register_varlen()
    setter = getattr(model, "set_attn_implementation", None)
    if setter is not None:
        try:
            setter(implementation)
            return
        except (ValueError, KeyError, ImportError, AttributeError):
            pass
    model.config._attn_implementation = implementation
