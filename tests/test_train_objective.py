"""The objective against hand-computed values: advantages, the clipped token term, k3, averaging, schedule."""

import math

import pytest
import torch

from offcurate.train.config import warmup_warning
from offcurate.train.objective import (
    ObjectiveConfig,
    group_advantages,
    k3_kl,
    lr_multiplier,
    off_policy_term,
    plan_group,
    token_terms,
    token_weight,
    weighted_loss,
)

S34 = math.sqrt(3) / 4  # population std of [1, 0, 0, 0]

ADVANTAGE_CASES = {
    "half_right": ([1, 1, 0, 0], 0.5, [0.5 / (0.5 + 1e-6)] * 2 + [-0.5 / (0.5 + 1e-6)] * 2),
    "one_of_four_population_std": ([1, 0, 0, 0], 0.5, [0.75 / (S34 + 1e-6)] + [-0.25 / (S34 + 1e-6)] * 3),
    "all_positive_gets_bias": ([1, 1, 1, 1], 0.5, [0.5] * 4),
    "all_positive_bias_zero_is_plain_grpo": ([1, 1, 1, 1], 0.0, [0.0] * 4),
    "all_zero_gets_no_bias": ([0, 0, 0, 0], 0.5, [0.0] * 4),
    "graded_rewards_all_positive": ([1.0, 0.5], 0.5, [0.25 / 0.250001 + 0.5, -0.25 / 0.250001 + 0.5]),
    "single_trace": ([1], 0.3, [0.3]),
}


@pytest.mark.parametrize("rewards, bias, expected", list(ADVANTAGE_CASES.values()), ids=list(ADVANTAGE_CASES))
def test_group_advantages(rewards, bias, expected):
    assert group_advantages(rewards, bias) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_population_not_sample_std():
    # sample std (ddof=1) of [1, 0] is 0.7071, population std 0.5: A = +-1 only with the population std
    assert group_advantages([1, 0], 0.0) == pytest.approx([1.0, -1.0], abs=1e-5)


TERM_CASES = {
    # name: (pi, A, eps, shaping, expected value of the per-token term)
    "positive_A_is_pi_A": (0.5, 2.0, 0.2, "none", 1.0),
    "negative_A_low_pi_clipped_to_1_minus_eps": (0.5, -1.0, 0.2, "none", -0.8),
    "negative_A_high_pi_unclipped": (0.9, -1.0, 0.2, "none", -0.9),
    "zero_A": (0.7, 0.0, 0.2, "none", 0.0),
    "wider_eps": (0.6, -1.0, 0.5, "none", -0.6),
    "luffy_positive_shaped": (0.5, 1.0, 0.2, "luffy", 0.5 / 0.6),
    # LUFFY shapes negatives too and clips nothing: -0.5/0.6, not the clipped -(1-ε) = -0.8
    "luffy_negative_shaped_not_clipped": (0.5, -1.0, 0.2, "luffy", -0.5 / 0.6),
    "luffy_negative_high_pi": (0.9, -2.0, 0.2, "luffy", -2.0 * 0.9 / 1.0),
}


@pytest.mark.parametrize("pi, adv, eps, shaping, expected", list(TERM_CASES.values()), ids=list(TERM_CASES))
def test_off_policy_term_values(pi, adv, eps, shaping, expected):
    term = off_policy_term(torch.tensor([math.log(pi)]), torch.tensor([adv]), eps, shaping, 0.1)
    assert term.item() == pytest.approx(expected, rel=1e-6)


def _grad_wrt_weights(fn, adv: float, target: int, seed: int = 0):
    """Gradient of fn(logp, A) w.r.t. a tiny linear model's weights, and of log π itself."""
    torch.manual_seed(seed)
    w = torch.randn(5, 3, requires_grad=True)
    x = torch.randn(3)
    logp = torch.log_softmax(w @ x, -1)[target]
    (grad_fn,) = torch.autograd.grad(fn(logp, torch.tensor(adv)), w)
    logp = torch.log_softmax(w @ x, -1)[target]
    (grad_logp,) = torch.autograd.grad(logp, w)
    return grad_fn, grad_logp, logp.exp().item()


@pytest.mark.parametrize("adv", [0.3, 1.0, 2.5], ids=["small_A", "unit_A", "large_A"])
def test_positive_advantage_gradient_is_A_pi_grad_log_pi(adv):
    grad, grad_logp, pi = _grad_wrt_weights(lambda lp, a: off_policy_term(lp[None], a[None]).sum(), adv, 2)
    torch.testing.assert_close(grad, adv * pi * grad_logp)
    assert grad.abs().sum() > 0


@pytest.mark.parametrize("adv", [1.5, -1.0], ids=["positive_A", "negative_A"])
def test_luffy_shaping_gradient(adv):
    gamma = 0.1
    grad, grad_logp, pi = _grad_wrt_weights(
        lambda lp, a: off_policy_term(lp[None], a[None], shaping="luffy", gamma=gamma).sum(), adv, 1
    )
    torch.testing.assert_close(grad, adv * gamma * pi / (pi + gamma) ** 2 * grad_logp)
    assert grad.abs().sum() > 0


def test_luffy_negative_gradient_hand_value():
    """π = 0.5, A = -1, γ = 0.1: d(A·π/(π+γ))/dlog π = A·γπ/(π+γ)² = -0.05/0.36, where the clip gives 0."""
    logp = torch.tensor([math.log(0.5)], requires_grad=True)
    off_policy_term(logp, torch.tensor([-1.0]), eps=0.2, shaping="luffy", gamma=0.1).sum().backward()
    assert logp.grad.item() == pytest.approx(-0.138889, abs=1e-6)


@pytest.mark.parametrize(
    "pi, expect_zero",
    [(0.05, True), (0.5, True), (0.79, True), (0.81, False), (0.99, False)],
    ids=["pi_0.05", "pi_0.5", "pi_0.79", "pi_0.81", "pi_0.99"],
)
def test_negative_advantage_gradient_only_above_1_minus_eps(pi, expect_zero):
    logp = torch.tensor([math.log(pi)], requires_grad=True)
    off_policy_term(logp, torch.tensor([-1.0]), eps=0.2).sum().backward()
    if expect_zero:
        assert logp.grad.item() == 0.0
    else:
        assert logp.grad.item() == pytest.approx(-pi, rel=1e-6)  # d(π·A)/dlogπ = A·π < 0: pushes π down


def test_k3_kl_values_and_penalty():
    logp = torch.log(torch.tensor([0.5, 0.2, 0.7]))
    ref = torch.log(torch.tensor([0.5, 0.4, 0.35]))
    d = (ref - logp).tolist()
    expected = [math.exp(x) - x - 1 for x in d]
    assert k3_kl(logp, ref).tolist() == pytest.approx(expected, rel=1e-5)
    assert k3_kl(logp, ref)[0].item() == 0.0 and (k3_kl(logp, ref) >= 0).all()
    adv = torch.tensor([1.0, 1.0, 1.0])
    plain = token_terms(logp, adv, ObjectiveConfig(beta=0.0))
    penalised = token_terms(logp, adv, ObjectiveConfig(beta=0.1), ref)
    torch.testing.assert_close(penalised, plain - 0.1 * k3_kl(logp, ref))
    with pytest.raises(ValueError, match="reference"):
        token_terms(logp, adv, ObjectiveConfig(beta=0.1))


def test_sft_term_is_log_prob():
    logp = torch.log(torch.tensor([0.25, 0.5]))
    torch.testing.assert_close(token_terms(logp, torch.ones(2), ObjectiveConfig(loss="sft")), logp)


def test_averaging_one_over_Q_G_and_length():
    """Two questions: q1 has G=2 traces of 2 and 3 tokens, q2 one trace of 1 token."""
    terms = torch.tensor([1.0, 3.0, 2.0, 4.0, 6.0, 5.0])
    lengths, groups = [2, 3, 1], [2, 2, 1]
    weights = torch.tensor(
        [token_weight(2, g, n) for g, n in zip(groups, lengths) for _ in range(n)], dtype=torch.float32
    )
    by_hand = -0.5 * (0.5 * ((1 + 3) / 2 + (2 + 4 + 6) / 3) + 5 / 1)
    assert weighted_loss(terms, weights).item() == pytest.approx(by_hand)
    # the sum over any split into micro-batches is the same loss
    split = weighted_loss(terms[:3], weights[:3]) + weighted_loss(terms[3:], weights[3:])
    assert split.item() == pytest.approx(by_hand)


PLAN_CASES = {
    "grpo_mixed_all_used": ("off-grpo", 0.5, 0.0, [1, 0, 1, 1], [True] * 4, 4, False),
    "grpo_all_positive_with_bias_used": ("off-grpo", 0.5, 0.0, [1, 1, 1], [True] * 3, 3, True),
    "grpo_all_positive_no_bias_skipped": ("off-grpo", 0.0, 0.0, [1, 1, 1], [False] * 3, 3, True),
    "grpo_no_bias_kl_keeps_all": ("off-grpo", 0.0, 0.1, [1, 1, 1], [True] * 3, 3, True),
    "sft_positives_only": ("sft", 0.5, 0.0, [1, 0, 1, 0], [True, False, True, False], 2, False),
    "sft_no_positive": ("sft", 0.5, 0.0, [0, 0], [False, False], 0, False),
}


@pytest.mark.parametrize(
    "loss, bias, beta, rewards, used, size, all_positive", list(PLAN_CASES.values()), ids=list(PLAN_CASES)
)
def test_plan_group(loss, bias, beta, rewards, used, size, all_positive):
    plan = plan_group(rewards, ObjectiveConfig(loss=loss, bias=bias, beta=beta))
    assert (plan.used, plan.size, plan.all_positive) == (used, size, all_positive)


@pytest.mark.parametrize(
    "step, expected",
    [(0, 0.25), (3, 1.0), (4, 1.0), (7, 0.5), (10, 0.0)],
    ids=["warmup_first", "warmup_last", "cosine_start", "cosine_middle", "cosine_end"],
)
def test_lr_multiplier(step, expected):
    assert lr_multiplier(step, warmup_steps=4, total_steps=10) == pytest.approx(expected)


@pytest.mark.parametrize(
    "warmup, total, peak",
    [(10, 3, "3e-07 (3/10 of --lr 1e-06)"), (4, 3, "7.5e-07 (3/4 of --lr 1e-06)")],
    ids=["default_warmup_3_steps", "one_short"],
)
def test_warmup_longer_than_the_run_is_named(warmup, total, peak):
    note = warmup_warning(warmup, total, 1e-6)
    assert note.startswith(f"--warmup-steps {warmup} is longer than the run ({total} steps)")
    assert f"peaks at {peak}" in note
    # the note's peak is the schedule's: the last step's multiplier is total / warmup
    assert lr_multiplier(total - 1, warmup, total) == pytest.approx(total / warmup)


@pytest.mark.parametrize("warmup, total", [(10, 10), (0, 3), (10, 500)], ids=["equal", "none", "short"])
def test_warmup_that_fits_is_silent(warmup, total):
    assert warmup_warning(warmup, total, 1e-6) is None
    assert max(lr_multiplier(s, warmup, total) for s in range(total)) == pytest.approx(1.0)


BAD_OBJECTIVES = {
    "unknown_loss": ({"loss": "ppo"}, "loss must be one of"),
    "unknown_shaping": ({"shaping": "x"}, "shaping must be one of"),
    "eps_1": ({"eps": 1.0}, r"eps must be in \[0, 1\)"),
    "negative_beta": ({"beta": -1.0}, "beta must be >= 0"),
    "sft_with_shaping": ({"loss": "sft", "shaping": "luffy"}, "--loss sft ignores --shaping"),
    "sft_with_eps_and_bias": ({"loss": "sft", "eps": 0.3, "bias": 0.0}, "--loss sft ignores --bias, --eps"),
    "luffy_with_eps": ({"shaping": "luffy", "eps": 0.3}, "--shaping luffy ignores --eps"),
    "gamma_without_luffy": ({"gamma": 0.2}, "--shaping none ignores --gamma"),
}


@pytest.mark.parametrize("kwargs, message", list(BAD_OBJECTIVES.values()), ids=list(BAD_OBJECTIVES))
def test_bad_objective_options(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ObjectiveConfig(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{"loss": "sft", "beta": 0.1}, {"shaping": "luffy", "gamma": 0.2}, {"eps": 0.3, "bias": 0.0}],
    ids=["sft_with_kl", "luffy_gamma", "grpo_eps_bias"],
)
def test_options_the_objective_reads_are_accepted(kwargs):
    assert ObjectiveConfig(**kwargs)
