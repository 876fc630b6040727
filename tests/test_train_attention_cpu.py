"""The CPU varlen attention: trajectories padded into batches of like lengths, one causal SDPA each.

    python -m pytest tests/test_train_attention_cpu.py -q

``--attn auto`` picks it on the CPU (SDPA's dense block-diagonal mask over a packed row was ~8x slower and
~3x the memory); CUDA keeps its choice. Values and gradients must equal the model run one trajectory at a
time, whatever the grouping.
"""

import pytest
import torch

from offcurate.train.attention import VARLEN, length_groups, pick_attention, set_attention
from offcurate.train.model import PackedPolicy, packed_logprobs, resolve_precision
from offcurate.train.packing import Sample, build_micro_batch
from offcurate.train.tiny import build_model

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)
VOCAB = 97

GROUP_CASES = {
    "one_length_one_group": ([5, 5, 5], [[0, 1, 2]]),
    "close_lengths_share_a_batch": ([10, 9, 8], [[0, 1, 2]]),
    "a_long_one_alone": ([100, 5, 6, 5], [[0], [1, 2, 3]]),
    "within_a_quarter_of_waste": ([12, 9, 7, 5], [[0, 1], [2, 3]]),
    "single": ([3], [[0]]),
}


@pytest.mark.parametrize("lengths, expected", list(GROUP_CASES.values()), ids=list(GROUP_CASES))
def test_length_groups(lengths, expected):
    groups = length_groups(lengths)
    assert groups == expected
    for group in groups:  # padding each group to its longest costs at most a quarter of its tokens
        assert max(lengths[i] for i in group) * len(group) <= 1.25 * sum(lengths[i] for i in group)


class _Config:
    use_sliding_window = False


PICK_CASES = {
    "cpu_auto_is_varlen": ("auto", "cpu", VARLEN),
    "cpu_sdpa_kept_when_asked": ("sdpa", "cpu", "sdpa"),
    "meta_auto_stays_sdpa": ("auto", "meta", "sdpa"),
}


@pytest.mark.parametrize("name, device, expected", list(PICK_CASES.values()), ids=list(PICK_CASES))
def test_pick_attention(name, device, expected):
    assert pick_attention(name, torch.device(device), _Config()) == expected


def test_cuda_auto_choice_unchanged(monkeypatch):
    """CUDA: varlen exactly when PyTorch has the flash kernel, as before (only the device type is read)."""
    from offcurate.train import attention

    cuda = torch.device("cuda")
    monkeypatch.setattr(attention, "_VARLEN_KERNEL", None)
    assert pick_attention("auto", cuda, _Config()) == "sdpa"
    monkeypatch.setattr(attention, "_VARLEN_KERNEL", object())
    assert pick_attention("auto", cuda, _Config()) == VARLEN


def test_sliding_window_keeps_sdpa_on_cpu():
    config = _Config()
    config.use_sliding_window = True
    assert pick_attention("auto", CPU, config) == "sdpa"


def _samples(lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Sample(torch.randint(0, VOCAB, (n,), generator=g).tolist(), max(1, n // 3), 1.0, 1.0 / n)
        for n in lengths
    ]


def _one_by_one(model, samples):
    """log-probs and their weighted-sum gradient, each trajectory run alone (plain SDPA, no packing)."""
    set_attention(model, "sdpa")
    model.zero_grad(set_to_none=True)
    out = []
    for s in samples:
        ids = torch.tensor([s.input_ids])
        logits = model(input_ids=ids, use_cache=False).logits[0].log_softmax(-1)
        out.append(logits[s.n_prompt - 1 : -1].gather(-1, ids[0, s.n_prompt :, None]).squeeze(-1))
    logp = torch.cat(out)
    return logp.detach(), logp


@pytest.mark.parametrize(
    "lengths",
    [[7, 12, 5, 9], [40, 3, 3, 38, 17], [6], [8, 8, 8, 8]],
    ids=["two_groups", "three_groups_reordered", "one_trajectory", "equal_lengths"],
)
def test_varlen_cpu_equals_one_by_one(lengths):
    model = build_model(VOCAB, seed=1).train()
    samples = _samples(lengths)
    expected, logp_ref = _one_by_one(model, samples)
    weights = torch.linspace(0.5, 1.5, expected.numel())
    (weights * logp_ref).sum().backward()
    grads_ref = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad(set_to_none=True)
    set_attention(model, VARLEN)
    got = packed_logprobs(PackedPolicy(model, FP32, chunk=7), build_micro_batch(samples))
    (weights * got).sum().backward()
    torch.testing.assert_close(got.detach(), expected, atol=1e-5, rtol=1e-5)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads_ref[name], atol=1e-5, rtol=1e-4, msg=name)
