"""The lean mode's optimizer: torch's AdamW arithmetic, and bf16 write-back that is unbiased (CPU)."""

import warnings

import pytest
import torch

from offcurate.train.optim import (
    StochasticRoundingAdamW,
    build_optimizer,
    round_stochastic_,
    rounding_noise,
    stochastic_bf16,
)
from offcurate.train.tiny import build_model

ULP_AT_1 = 2.0**-7  # bf16 spacing in [1, 2)


def test_equals_torch_adamw_on_fp32_parameters():
    """Where the write-back is a plain copy, the update is torch.optim.AdamW's (decay, moments, eps)."""
    torch.manual_seed(0)
    ids = torch.randint(0, 50, (1, 12))
    mine, ref = build_model(50, seed=3), build_model(50, seed=3)

    def groups(model):
        return [
            {"params": [p for p in model.parameters() if p.ndim >= 2], "weight_decay": 0.1},
            {"params": [p for p in model.parameters() if p.ndim < 2], "weight_decay": 0.0},
        ]

    opts = [
        StochasticRoundingAdamW(groups(mine), lr=1e-2, chunk=1000),  # splits the 50 x 64 embedding
        torch.optim.AdamW(groups(ref), lr=1e-2),
    ]
    for _ in range(3):
        for model, opt in zip((mine, ref), opts):
            model(input_ids=ids, labels=ids).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    for (name, a), (_, b) in zip(mine.named_parameters(), ref.named_parameters()):
        torch.testing.assert_close(a, b, msg=name)
    assert not torch.equal(mine.model.embed_tokens.weight, build_model(50, seed=3).model.embed_tokens.weight)


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["positive", "negative"])
def test_stochastic_rounding_is_unbiased(sign):
    torch.manual_seed(0)
    value = torch.full((200_000,), sign * (1.0 + 0.3 * ULP_AT_1))
    target = torch.empty(value.shape, dtype=torch.bfloat16)
    round_stochastic_(target, value)
    assert set(target.float().abs().unique().tolist()) == {1.0, 1.0 + ULP_AT_1}  # the two neighbours
    assert (target.float().mean().item() - value[0].item()) / ULP_AT_1 == pytest.approx(0.0, abs=0.01)
    exact = torch.tensor([0.5, -3.0, 0.0, 1.0 + ULP_AT_1])
    round_stochastic_(target[:4], exact)
    assert target[:4].float().tolist() == exact.tolist()  # representable values never move


def test_rounding_noise_is_a_uniform_function_of_position():
    """Any slice of a tensor (a rank's shard) gets the bits the whole tensor gets at those positions."""
    cpu = torch.device("cpu")
    whole = rounding_noise(12345, 0, 100_000, cpu)
    assert torch.equal(rounding_noise(12345, 40_000, 7_000, cpu), whole[40_000:47_000])
    assert whole.dtype == torch.int32 and whole.min() >= 0 and whole.max() < 1 << 16
    assert whole.float().mean().item() / (1 << 16) == pytest.approx(0.5, abs=0.005)
    bits = [((whole >> b) & 1).float().mean().item() for b in range(16)]
    assert bits == pytest.approx([0.5] * 16, abs=0.01)  # every bit is a fair coin
    other = rounding_noise(12346, 0, 100_000, cpu)  # the next step or parameter: fresh bits
    assert (other == whole).float().mean().item() < 0.001


@pytest.mark.parametrize("key", [0, 2**31 - 1, 2**31, 2**32 + 1, 2**33 + 7])
def test_signed_32_bit_keys_give_the_same_noise(key):
    """Keys are folded into int32 range for the compiled kernel; the hash reads their low 32 bits only."""
    from offcurate.train.optim import _signed32

    assert -(2**31) <= _signed32(key) < 2**31
    cpu = torch.device("cpu")
    assert torch.equal(rounding_noise(key, 99, 5000, cpu), rounding_noise(_signed32(key), 99, 5000, cpu))


def test_compiled_write_back_is_the_eager_one_bit_for_bit():
    """CUDA runs the write-back compiled (one kernel); integer and bit operations only, so it must round
    every element as eager mode does, and a new key each step must not recompile it (measured on CPU:
    2 graphs for these 6 calls, the second for the 1-element shape; ~4 s of compilation)."""
    import torch._dynamo
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    compiled = torch.compile(stochastic_bf16, dynamic=True)
    before = counters["stats"]["unique_graphs"]
    cases = [(11, 0, 1000), (12, 0, 1000), (13, 5000, 777), (-(2**31), 123_456_789, 4096)]
    cases += [(2**31 - 1, 7, 1), (-5, 0, 3)]  # the optimizer's keys are signed 32-bit (_signed32)
    for key, start, n in cases:
        value = torch.randn(n, generator=torch.Generator().manual_seed(key % 1000))
        got, expected = compiled(value, key, start), stochastic_bf16(value, key, start)
        assert got.dtype == torch.bfloat16 and torch.equal(got, expected), (key, start, n)
    assert counters["stats"]["unique_graphs"] - before <= 2


def _drift(optimizer_class, steps=200, lr=1e-6):
    """Mean change of bf16 weights at 0.02 under a constant gradient: Adam moves each by ~lr a step."""
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.full((20_000,), 0.02, dtype=torch.bfloat16))
    opt = optimizer_class([w], lr=lr)
    start = w.detach().float().clone()
    for _ in range(steps):
        w.grad = torch.ones_like(w)
        opt.step()
    return (w.detach().float() - start).mean().item()


def test_lr_1e6_moves_bf16_weights_on_average():
    """bf16 spacing at 0.02 is 2^-13 ≈ 1.2e-4: round-to-nearest loses every 1e-6 update, SR keeps them."""
    assert _drift(torch.optim.AdamW) == 0.0  # the problem: plain AdamW on bf16 weights never moves
    assert _drift(StochasticRoundingAdamW) == pytest.approx(-200 * 1e-6, rel=0.05)


@pytest.mark.parametrize(
    "dtype, expected",
    [(torch.float32, torch.optim.AdamW), (torch.bfloat16, StochasticRoundingAdamW)],
    ids=["fp32_torch_adamw", "bf16_stochastic_rounding"],
)
def test_build_optimizer_picks_by_parameter_dtype(dtype, expected):
    model = build_model(50, seed=0).to(dtype)
    assert type(build_optimizer(model, 1e-6, 0.0, torch.device("cpu"))) is expected


def test_write_back_falls_back_to_eager_when_compiling_fails(monkeypatch):
    """No Triton (or no compiler) on a CUDA machine: one warning, then the same bits from eager mode."""
    from offcurate.train import optim

    def broken(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("no triton")

        return fail

    monkeypatch.setattr(optim, "_compiled", [])
    monkeypatch.setattr(torch, "compile", broken)
    value = torch.randn(100)
    with pytest.warns(UserWarning, match="torch.compile failed"):
        first = optim._compiled_or_eager(value, 5, 0)  # the CUDA branch of fused_stochastic_bf16
    assert optim._compiled == [None]
    assert torch.equal(first, stochastic_bf16(value, 5, 0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        assert torch.equal(optim._compiled_or_eager(value, 5, 0), first)
