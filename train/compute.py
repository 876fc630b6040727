"""The compute of one optimizer step: forward + backward of every micro-batch, clip, AdamW, zero grads.

    policy = PackedPolicy(model, precision, chunk=1024)       # or the FSDP-sharded one (distributed.shard)
    stats = accumulate(policy, micro_batches(samples, budget), objective, device)
    grad_norm = optimizer_step(policy, optimizer, grad_clip=1.0)

No I/O and no polars/pyarrow: ``engine`` (the training loop) and bench/bench_train.py both run exactly this,
so the benchmark times the trainer's own step, also on a GPU image that lacks the curation dependencies.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import PackedPolicy, packed_logprobs
from .objective import ObjectiveConfig, k3_kl, token_terms, weighted_loss
from .optim import clip_gradients
from .packing import MicroBatch, Sample, build_micro_batch, pack


@dataclass
class StepStats:
    """Sums over the micro-batches of one step (tensors stay on the device until the step ends)."""

    loss: torch.Tensor
    prob_sum: torch.Tensor
    kl_sum: torch.Tensor
    n_loss_tokens: int
    seq_lengths: list[int]


def micro_batches(samples: list[Sample], budget: int) -> list[MicroBatch]:
    """Pack a step's samples into padding-free rows of at most ``budget`` tokens."""
    bins = pack([len(s.input_ids) for s in samples], budget)
    return [build_micro_batch([samples[i] for i in b]) for b in bins]


def accumulate(
    policy: PackedPolicy,
    batches: list[MicroBatch],
    objective: ObjectiveConfig,
    device: torch.device,
    ref_policy: PackedPolicy | None = None,
) -> StepStats:
    """Forward + backward of every micro-batch; gradients accumulate in ``.grad``, the loss is returned.

    The policies carry their precision and log-prob chunk (``PackedPolicy``), sharded or not.
    """
    zero = torch.zeros((), device=device)
    stats = StepStats(zero.clone(), zero.clone(), zero.clone(), 0, [])
    for cpu_batch in batches:
        mb = cpu_batch.to(device)
        ref_logp = None
        if ref_policy is not None:
            with torch.no_grad():
                ref_logp = packed_logprobs(ref_policy, mb)
        logp = packed_logprobs(policy, mb)
        terms = token_terms(logp, mb.advantages, objective, ref_logp)
        loss = weighted_loss(terms, mb.weights)
        loss.backward()
        if cpu_batch.padding:
            continue
        with torch.no_grad():
            stats.loss += loss.detach()
            stats.prob_sum += logp.detach().exp().sum()
            if ref_logp is not None:
                stats.kl_sum += k3_kl(logp.detach(), ref_logp).sum()
        stats.n_loss_tokens += int(mb.targets.numel())
        stats.seq_lengths.extend(cpu_batch.seq_lengths)
    return stats


def optimizer_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float) -> float:
    """Clip the accumulated gradients, step, free them; return the gradient norm before clipping."""
    grad_norm = clip_gradients(model, grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return grad_norm
