"""Packing: bins within budget, packed log-probs equal per-sequence ones, gradients independent of packing."""

import pytest
import torch

from offcurate.train.attention import VARLEN, set_attention
from offcurate.train.compute import accumulate, micro_batches
from offcurate.train.model import (
    PackedPolicy,
    Precision,
    chunked_logprobs,
    enable_checkpointing,
    packed_logprobs,
    reference_precision,
    resolve_precision,
)
from offcurate.train.objective import ObjectiveConfig
from offcurate.train.packing import Sample, build_micro_batch, pack
from offcurate.train.tiny import build_model

CPU = torch.device("cpu")
FP32 = resolve_precision("fp32", CPU)
VOCAB = 97


@pytest.fixture(scope="module")
def model():
    return build_model(VOCAB, seed=1).train()


def _samples(spec, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        Sample(torch.randint(0, VOCAB, (n,), generator=g).tolist(), p, adv, 1.0 / (n - p))
        for n, p, adv in spec
    ]


SPEC = [(7, 3, 1.0), (12, 5, -0.5), (5, 1, 0.5), (9, 8, 2.0)]


def test_pack_first_fit_decreasing():
    lengths = [5, 3, 4, 2, 6]
    bins = pack(lengths, budget=8)
    assert bins == [[3, 4], [0, 1], [2]]
    assert sorted(i for b in bins for i in b) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in b) <= 8 for b in bins)
    assert pack([10, 2], budget=8) == [[0], [1]]  # an oversized one gets its own bin


def test_build_micro_batch_layout():
    samples = [Sample([10, 11, 12, 13], 2, 1.0, 0.5), Sample([20, 21, 22], 1, -1.0, 0.25)]
    mb = build_micro_batch(samples)
    assert mb.input_ids.tolist() == [[10, 11, 12, 13, 20, 21, 22]]
    assert mb.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    assert mb.cu_seqlens.tolist() == [0, 4, 7] and mb.max_seqlen == 4
    assert mb.pred_index.tolist() == [1, 2, 4, 5]  # hidden states predicting 12, 13, 21, 22
    assert mb.targets.tolist() == [12, 13, 21, 22]
    assert mb.advantages.tolist() == [1.0, 1.0, -1.0, -1.0]
    assert mb.weights.tolist() == [0.5, 0.5, 0.25, 0.25]
    with pytest.raises(ValueError):
        build_micro_batch([Sample([1, 2], 2, 1.0, 1.0)])  # no response token


def _logprobs(model, mb, precision=FP32, chunk=1024):
    """What the step computes: the model's packed log-probs through its PackedPolicy."""
    return packed_logprobs(PackedPolicy(model, precision, chunk), mb)


def _reference_logprobs(model, samples):
    out = []
    with torch.no_grad():
        for s in samples:
            ids = torch.tensor([s.input_ids])
            logits = model(input_ids=ids, use_cache=False).logits[0].log_softmax(-1)
            out.append(logits[s.n_prompt - 1 : -1].gather(-1, ids[0, s.n_prompt :, None]).squeeze(-1))
    return torch.cat(out)


@pytest.mark.parametrize("attn", ["sdpa", VARLEN, "eager"])
def test_packed_logprobs_equal_per_sequence(model, attn):
    samples = _samples(SPEC)
    set_attention(model, "sdpa")
    expected = _reference_logprobs(model, samples)
    set_attention(model, attn)
    try:
        with torch.no_grad():
            got = _logprobs(model, build_micro_batch(samples), chunk=5)
    finally:
        set_attention(model, "sdpa")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_attention_crossing_boundaries_would_be_caught(model):
    """Negative control: without restarting positions the rows leak into each other and the test fails."""
    samples = _samples(SPEC)
    expected = _reference_logprobs(model, samples)
    mb = build_micro_batch(samples)
    mb.position_ids = torch.arange(mb.n_tokens)[None]
    with torch.no_grad():
        got = _logprobs(model, mb)
    assert not torch.allclose(got, expected, atol=1e-3)


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_chunked_logprobs_match_full_softmax(chunk):
    torch.manual_seed(0)
    head = torch.nn.Linear(8, 50, bias=False)
    hidden = torch.randn(11, 8, requires_grad=True)
    targets = torch.randint(0, 50, (11,))
    got = chunked_logprobs(hidden, head, targets, chunk)
    full = torch.log_softmax(head(hidden), -1).gather(-1, targets[:, None]).squeeze(-1)
    torch.testing.assert_close(got, full)
    (g1,) = torch.autograd.grad(got.sum(), hidden)
    (g2,) = torch.autograd.grad(full.sum(), hidden)
    torch.testing.assert_close(g1, g2)


def _grads(model, batches, objective):
    model.zero_grad(set_to_none=True)
    stats = accumulate(PackedPolicy(model, FP32, chunk=4), batches, objective, CPU)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return stats.loss.item(), grads


@pytest.mark.parametrize("checkpointing", [False, True], ids=["plain", "checkpointed"])
def test_step_gradient_independent_of_micro_batch_split(checkpointing):
    model = build_model(VOCAB, seed=2).train()
    if checkpointing:
        enable_checkpointing(model)
    samples = _samples(SPEC, seed=3)
    objective = ObjectiveConfig(eps=0.2)
    one_row = micro_batches(samples, budget=64)
    many_rows = micro_batches(samples, budget=12)
    assert len(one_row) == 1 and len(many_rows) == 3
    loss_a, grads_a = _grads(model, one_row, objective)
    loss_b, grads_b = _grads(model, many_rows, objective)
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    assert grads_a.keys() == grads_b.keys() and grads_a
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=1e-6, rtol=1e-4)


@pytest.mark.parametrize("attn", ["sdpa", VARLEN])
def test_bf16_mixed_autocast_close_to_fp32(model, attn):
    """The autocast path (bf16 matmuls over fp32 weights) runs through both attentions and stays close."""
    samples = _samples(SPEC)
    set_attention(model, attn)
    mixed = Precision("bf16-mixed", torch.float32, torch.bfloat16)
    try:
        exact = _logprobs(model, build_micro_batch(samples))
        approx = _logprobs(model, build_micro_batch(samples), mixed)
    finally:
        set_attention(model, "sdpa")
    assert approx.dtype == torch.float32
    torch.testing.assert_close(approx, exact, atol=2e-2, rtol=0)


@pytest.mark.parametrize("gqa", [True, False], ids=["kernel_gqa", "repeated_kv"])
def test_varlen_kernel_call_plumbing(model, monkeypatch, gqa):
    """The CUDA branch, with a CPU stand-in for the flash kernel: shapes, cu_seqlens, GQA and causal flags."""
    from offcurate.train import attention as attention_module

    calls = []

    def fake_kernel(q, k, v, cu_q, cu_k, max_q, max_k, **kwargs):
        calls.append(kwargs)
        assert q.shape[1] == 4 and k.shape[1] == (2 if gqa else 4)
        assert cu_q.dtype == torch.int32 and max_q == max_k == max(n for n, _, _ in SPEC)
        out = []
        for a, b in zip(cu_q.tolist()[:-1], cu_q.tolist()[1:]):
            qs, ks, vs = (x[a:b].transpose(0, 1) for x in (q, k, v))
            o = torch.nn.functional.scaled_dot_product_attention(
                qs, ks, vs, is_causal=True, scale=kwargs.get("scale"), enable_gqa=True
            )
            out.append(o.transpose(0, 1))
        return torch.cat(out)

    monkeypatch.setattr(attention_module, "_kernel_for", lambda q: fake_kernel)
    monkeypatch.setattr(attention_module, "_VARLEN_GQA", gqa)
    samples = _samples(SPEC)
    expected = _reference_logprobs(model, samples)
    set_attention(model, VARLEN)
    try:
        with torch.no_grad():
            got = _logprobs(model, build_micro_batch(samples))
    finally:
        set_attention(model, "sdpa")
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    assert len(calls) == 2  # one call per layer, not per trajectory
    assert calls[0].get("enable_gqa", False) is gqa and calls[0]["scale"] == pytest.approx(16**-0.5)
    assert calls[0].get("window_size", (-1, 0)) == (-1, 0) or calls[0].get("is_causal") is True


REFERENCE_DTYPES = {
    "bf16_mixed_cuda_gets_bf16": ("bf16-mixed", "cuda", torch.bfloat16),
    "bf16_mixed_cpu_keeps_fp32": ("bf16-mixed", "cpu", torch.float32),
    "fp32_cuda_stays_exact": ("fp32", "cuda", torch.float32),
    "bf16_cuda": ("bf16", "cuda", torch.bfloat16),
}


@pytest.mark.parametrize(
    "dtype, device, expected", list(REFERENCE_DTYPES.values()), ids=list(REFERENCE_DTYPES)
)
def test_reference_model_precision(dtype, device, expected):
    device = torch.device(device)  # only the device type is read: no CUDA needed
    assert reference_precision(resolve_precision(dtype, device), device).param_dtype == expected


def test_bf16_reference_under_the_policys_autocast(model):
    """accumulate runs the reference with the policy's precision: bf16 weights under bf16-mixed autocast."""
    samples = _samples(SPEC)
    mixed = Precision("bf16-mixed", torch.float32, torch.bfloat16)
    reference = build_model(VOCAB, seed=1).to(torch.bfloat16).eval()
    with torch.no_grad():
        exact = _logprobs(model, build_micro_batch(samples))
        ref = _logprobs(reference, build_micro_batch(samples), mixed)
    assert ref.dtype == torch.float32
    torch.testing.assert_close(ref, exact, atol=5e-2, rtol=0)
