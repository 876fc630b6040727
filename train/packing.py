"""Padding-free packing: several trajectories in one row of at most ``--tokens-per-micro-batch`` tokens.

    bins = pack([len(s.input_ids) for s in samples], budget=32768)
    batch = build_micro_batch([samples[i] for i in bins[0]])

No pad token is ever computed. Position ids restart at 0 for every trajectory; that is what tells the
attention where one trajectory ends (transformers turns restarting position ids into a block-diagonal
mask for SDPA; the varlen kernel gets the same boundaries as ``cu_seqlens``), so attention never crosses
two trajectories and a packed row gives the same log-probs as the trajectories run one by one
(tests/test_train_packing.py checks it). Only response tokens get a log-prob: ``pred_index`` are the
positions whose hidden state predicts a response token, ``targets`` those tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Sample:
    """One tokenised trajectory: prompt + response ids, its advantage and the weight of each loss token."""

    input_ids: list[int]
    n_prompt: int
    advantage: float
    weight: float
    question: int = 0

    @property
    def n_response(self) -> int:
        return len(self.input_ids) - self.n_prompt


@dataclass
class MicroBatch:
    """One packed row and what the loss needs, all as tensors (move with ``to``)."""

    input_ids: torch.Tensor  # [1, T] int64
    position_ids: torch.Tensor  # [1, T] int64, restarting at 0 per trajectory
    cu_seqlens: torch.Tensor  # [n + 1] int32, trajectory boundaries
    max_seqlen: int
    pred_index: torch.Tensor  # [M] positions whose hidden state predicts a response token
    targets: torch.Tensor  # [M] the response tokens
    advantages: torch.Tensor  # [M] float32, A_i of the token's trajectory
    weights: torch.Tensor  # [M] float32, 1/(Q·G·|o_i|)
    seq_lengths: list[int]
    padding: bool = False  # a zero-weight row that only keeps sharded ranks in step (in no statistic)

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    def to(self, device: torch.device) -> MicroBatch:
        move = {
            k: (v.to(device, non_blocking=True) if isinstance(v, torch.Tensor) else v)
            for k, v in self.__dict__.items()
        }
        return MicroBatch(**move)


def pack(lengths: list[int], budget: int) -> list[list[int]]:
    """First-fit decreasing: indices grouped in bins whose lengths sum to at most ``budget``.

    A length above the budget gets a bin of its own (callers keep max-len <= budget). Deterministic:
    ties keep input order, and each bin lists its indices in increasing order.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    bins: list[list[int]] = []
    room: list[int] = []
    for i in order:
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(budget - lengths[i])
    return [sorted(b) for b in bins]


def build_micro_batch(samples: list[Sample]) -> MicroBatch:
    """Concatenate the samples into one row with restarting positions and response-token targets."""
    ids: list[int] = []
    positions: list[int] = []
    pred: list[int] = []
    adv: list[float] = []
    weights: list[float] = []
    cu = [0]
    for s in samples:
        if s.n_prompt < 1 or s.n_response < 1:
            raise ValueError("a sample needs at least one prompt token and one response token")
        start = len(ids)
        n = len(s.input_ids)
        ids.extend(s.input_ids)
        positions.extend(range(n))
        pred.extend(range(start + s.n_prompt - 1, start + n - 1))
        adv.extend([s.advantage] * s.n_response)
        weights.extend([s.weight] * s.n_response)
        cu.append(start + n)
    input_ids = torch.tensor([ids], dtype=torch.long)
    pred_index = torch.tensor(pred, dtype=torch.long)
    lengths = [len(s.input_ids) for s in samples]
    return MicroBatch(
        input_ids=input_ids,
        position_ids=torch.tensor([positions], dtype=torch.long),
        cu_seqlens=torch.tensor(cu, dtype=torch.int32),
        max_seqlen=max(lengths),
        pred_index=pred_index,
        targets=input_ids[0, pred_index + 1].clone(),
        advantages=torch.tensor(adv, dtype=torch.float32),
        weights=torch.tensor(weights, dtype=torch.float32),
        seq_lengths=lengths,
    )


def attention_flops(seq_lengths: list[int], n_layers: int, hidden: int) -> int:
    """6·L·l²·d summed over trajectories: the attention part of the model FLOPs (the anchor's 6·L·T·d·T)."""
    return sum(6 * n_layers * n * n * hidden for n in seq_lengths)
