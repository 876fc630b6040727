"""Ulysses sequence parallelism: K ranks share one packed row, T/K tokens each, for 32K+ traces.

    torchrun --nproc-per-node 8 -m offcurate train ... --sp-size 4    # 2 groups of 4 ranks, one row each
    python -m pytest tests/test_train_ulysses.py                      # 2 CPU ranks (gloo) against 1 process

Why: activations grow with the row's length; on one GPU a 32K-token row of a 7B model does not fit beside
its weights. With ``--sp-size K`` the K ranks of a group run the same micro-batch, each holding a
contiguous T/K slice of its tokens (embedding, MLPs, norms and the log-prob head see only that slice).
Attention needs every token of a trajectory, so around it an all-to-all trades the slice of all H heads
for all T tokens of H/K heads, the varlen attention runs on the whole row's ``cu_seqlens``, and a second
all-to-all trades back (DeepSpeed-Ulysses; verl does the same). PyTorch's autograd-aware
``all_to_all_single`` carries the gradients back the same way.

Each rank's loss covers the response tokens whose hidden state it holds, with the step's token weights,
so the group's losses add up to the micro-batch's loss and FSDP's summed gradient is still the whole
step's: log-probs and gradients equal one process (tests/test_train_ulysses.py).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.distributed as dist

from ..curate.io.errors import OffcurateError
from .packing import MicroBatch


def slice_micro_batch(mb: MicroBatch, rank: int, size: int) -> MicroBatch:
    """Rank ``rank``'s contiguous slice of a packed row split ``size`` ways.

    The row is padded to a multiple of ``size`` with a trajectory of its own (the repeated last token,
    positions from 0, never a target), so every slice has T/K tokens. ``cu_seqlens`` and ``max_seqlen``
    stay those of the whole row: attention runs on the whole row. Log-prob targets, advantages and
    weights keep the response tokens whose predicting position lies in the slice; the sequence lengths
    (statistics) go with slice 0 only.
    """
    if size == 1:
        return mb
    total = mb.n_tokens
    pad = -total % size
    input_ids, position_ids, cu, max_seqlen = mb.input_ids, mb.position_ids, mb.cu_seqlens, mb.max_seqlen
    if pad:
        input_ids = torch.cat([input_ids, input_ids[:, -1:].expand(1, pad)], dim=1)
        position_ids = torch.cat([position_ids, torch.arange(pad).unsqueeze(0)], dim=1)
        cu = torch.cat([cu, cu.new_tensor([total + pad])])
        max_seqlen = max(max_seqlen, pad)
    local = (total + pad) // size
    start, stop = rank * local, (rank + 1) * local
    keep = (mb.pred_index >= start) & (mb.pred_index < stop)
    return replace(
        mb,
        input_ids=input_ids[:, start:stop],
        position_ids=position_ids[:, start:stop],
        cu_seqlens=cu,
        max_seqlen=max_seqlen,
        pred_index=mb.pred_index[keep] - start,
        targets=mb.targets[keep],
        advantages=mb.advantages[keep],
        weights=mb.weights[keep],
        seq_lengths=mb.seq_lengths if rank == 0 else [],
    )


def _all_to_all(send: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """Chunk i of dim 0 goes to rank i; chunk i of the result came from rank i (gradients flow back)."""
    from torch.distributed._functional_collectives import all_to_all_single_autograd

    # the result waits for the collective at its first use (no wait_tensor: it has no autograd kernel
    # before torch 2.6, and backward through it warns there)
    return all_to_all_single_autograd(send.contiguous(), None, None, group)


def _scatter_heads(x: torch.Tensor, group: dist.ProcessGroup, size: int) -> torch.Tensor:
    """[T/K, H, D] tokens of this rank, all heads -> [T, H/K, D] all tokens, this rank's heads."""
    local, heads, dim = x.shape
    send = x.reshape(local, size, heads // size, dim).transpose(0, 1)  # [K, T/K, H/K, D] by head group
    return _all_to_all(send, group).reshape(size * local, heads // size, dim)


def heads_for_sequence(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, group: dist.ProcessGroup
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """q [T/K, H, D], k/v [T/K, Hkv, D] -> the whole row for this rank's H/K heads (and their KV heads).

    Query head h reads KV head h // (H/Hkv), so query heads [g·H/K, (g+1)·H/K) read KV heads
    [g·Hkv/K, (g+1)·Hkv/K): when K divides Hkv the KV heads split the same way. When Hkv divides K
    (2 KV heads, K = 4) each KV head is repeated K/Hkv times first, so each rank gets the one its query
    heads read; otherwise K/V are repeated to all H heads.
    """
    size = group.size()
    heads, kv_heads = q.shape[1], k.shape[1]
    if heads % size:
        raise ValueError(f"--sp-size {size} must divide the model's {heads} attention heads")
    if kv_heads % size:
        repeat = size // kv_heads if size % kv_heads == 0 else heads // kv_heads
        k, v = k.repeat_interleave(repeat, dim=1), v.repeat_interleave(repeat, dim=1)
    return tuple(_scatter_heads(x, group, size) for x in (q, k, v))


def sequence_for_heads(out: torch.Tensor, group: dist.ProcessGroup) -> torch.Tensor:
    """[T, H/K, D] attention output of this rank's heads -> [T/K, H, D] this rank's tokens, all heads."""
    size = group.size()
    total, heads, dim = out.shape
    got = _all_to_all(out.reshape(size, total // size, heads, dim), group)  # [K head groups, T/K, H/K, D]
    return got.transpose(0, 1).reshape(total // size, size * heads, dim)


def sequence_groups(world: int, size: int, device: torch.device) -> dist.ProcessGroup | None:
    """This rank's group of ``size`` consecutive ranks (a (world/size, size) device mesh); None if 1."""
    if size == 1:
        return None
    from torch.distributed.device_mesh import init_device_mesh

    mesh = init_device_mesh(device.type, (world // size, size), mesh_dim_names=("dp", "sp"))
    return mesh["sp"].get_group()


def check_model(config, size: int) -> None:
    """Refuse, before any weight loads, a ``--sp-size`` the model cannot take: one that does not divide
    its attention heads, or a sliding-window model (the varlen attention has no window)."""
    if size == 1:
        return
    heads = getattr(config, "num_attention_heads", None)
    if isinstance(heads, int) and heads % size:
        raise OffcurateError(f"--sp-size {size} must divide the model's {heads} attention heads")
    if getattr(config, "use_sliding_window", False):
        raise OffcurateError(f"--sp-size {size}: sliding-window attention is not supported with it")
