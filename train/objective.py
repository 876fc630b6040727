"""The off-policy GRPO objective as pure functions, so each piece can be checked against hand-computed values.

    python3 -m pytest tests/test_train_objective.py

Notation of shared/method.md: a question's G teacher traces o_1..o_G with rewards r_i (null when the
question's vote status is not ``ok``: such questions are skipped), π = π_θ(o_{i,t} | q, o_{i,<t}).

* Advantage: A_i = (r_i - mean r) / (std r + 1e-6) with the *population* std (divide by G, numpy's
  default ``ddof=0``), the same for every token of o_i. TRL and verl divide by G-1 (``ddof=1``): their A
  is sqrt((G-1)/G) of ours, ~3% smaller at G = 16 (it matters when comparing runs or learning rates).
  If every r_i > 0 the group is all-positive and A_i + b is used instead (``--bias``, 0.5 by default;
  ``--bias 0`` is plain off-policy GRPO).
* Token term (teacher probability taken as 1): min[π·A, max(π, 1-ε)·A]. ``--shaping luffy`` is LUFFY's
  off-policy term instead (verl ``mix_src``): f(π)·A with f(π) = π/(π+γ) for every token of either sign and
  no clip, so negative traces also push down tokens the model rates below 1-ε.
* Optional KL penalty: -β·k3 with k3 = exp(ref - logp) - (ref - logp) - 1 (``--beta > 0`` only).
* Loss (minimised) of one optimizer step over its Q questions:

      loss = -1/Q Σ_q 1/G_q Σ_i 1/|o_i| Σ_t [term_{i,t} - β·k3_{i,t}]

  so every response token carries the weight 1/(Q·G_q·|o_i|) and the loss of a micro-batch is
  -Σ weight·term: summing micro-batches (gradient accumulation) gives the exact step loss for any packing.
  Traces dropped for length keep their place in G (their term is zero); they still shape the group mean.
* ``--loss sft``: the term is log π on positive traces only (r > 0); G_q becomes the number of positives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

STD_EPS = 1e-6
LOSSES = ("off-grpo", "sft")
SHAPINGS = ("none", "luffy")


@dataclass(frozen=True)
class ObjectiveConfig:
    """The knobs of the objective (CLI: --loss, --bias, --eps, --beta, --shaping, --gamma)."""

    loss: str = "off-grpo"
    bias: float = 0.5
    eps: float = 0.2
    beta: float = 0.0
    shaping: str = "none"
    gamma: float = 0.1

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.shaping not in SHAPINGS:
            raise ValueError(f"shaping must be one of {SHAPINGS}, got {self.shaping!r}")
        # nan passes every comparison-based check (nan < 0 is false): each value must be finite first
        bad = [
            f"--{name} {getattr(self, name)}" for name in _NUMBERS if not math.isfinite(getattr(self, name))
        ]
        if bad:
            raise ValueError(f"{', '.join(bad)}: must be a finite number")
        if not 0.0 <= self.eps < 1.0:
            raise ValueError(f"eps must be in [0, 1), got {self.eps}")
        if self.beta < 0 or self.gamma <= 0:
            raise ValueError("beta must be >= 0 and gamma > 0")
        ignored = [f"--{name}" for name in self.ignored_fields() if getattr(self, name) != _DEFAULTS[name]]
        if ignored:
            what = f"--loss {self.loss}" + (f" --shaping {self.shaping}" if self.loss != "sft" else "")
            raise ValueError(f"{what} ignores {', '.join(ignored)}: leave it at its default")

    def ignored_fields(self) -> tuple[str, ...]:
        """The knobs this objective does not read: setting one is a mistake, not a silent no-op."""
        if self.loss == "sft":
            return ("bias", "eps", "shaping", "gamma")
        return ("eps",) if self.shaping == "luffy" else ("gamma",)


_DEFAULTS = {name: f.default for name, f in ObjectiveConfig.__dataclass_fields__.items()}
_NUMBERS = ("bias", "eps", "beta", "gamma")


def is_all_positive(rewards: Sequence[float]) -> bool:
    """Every trace of the group is right (r_i > 0): the case plain GRPO learns nothing from."""
    return len(rewards) > 0 and all(r > 0 for r in rewards)


def group_advantages(rewards: Sequence[float], bias: float = 0.5, std_eps: float = STD_EPS) -> list[float]:
    """A_i = (r_i - mean) / (population std + std_eps), plus ``bias`` when the group is all-positive."""
    if not rewards:
        raise ValueError("a group needs at least one reward")
    g = len(rewards)
    mean = sum(rewards) / g
    std = math.sqrt(sum((r - mean) ** 2 for r in rewards) / g)
    advantages = [(r - mean) / (std + std_eps) for r in rewards]
    if is_all_positive(rewards):
        advantages = [a + bias for a in advantages]
    return advantages


@dataclass(frozen=True)
class GroupPlan:
    """What one question contributes: an advantage per trace, which traces are computed, the divisor G."""

    advantages: list[float]
    used: list[bool]
    size: int
    all_positive: bool


def plan_group(rewards: Sequence[float], cfg: ObjectiveConfig) -> GroupPlan:
    """Advantages and the divisor G of one question, and which traces can change the loss at all.

    A trace with A = 0 and no KL term contributes exactly zero (value and gradient), so it is counted in G
    but never run through the model. For SFT only positive traces are used and G is their number.
    """
    all_positive = is_all_positive(rewards)
    if cfg.loss == "sft":
        used = [r > 0 for r in rewards]
        return GroupPlan([1.0 if u else 0.0 for u in used], used, sum(used), all_positive)
    advantages = group_advantages(rewards, cfg.bias)
    used = [a != 0.0 or cfg.beta > 0 for a in advantages]
    return GroupPlan(advantages, used, len(rewards), all_positive)


def token_weight(n_questions: int, group_size: int, n_response_tokens: int) -> float:
    """1/(Q·G·|o|): the averaging 1/Q Σ_q 1/G Σ_i 1/|o_i| Σ_t folded into one weight per token."""
    return 1.0 / (n_questions * group_size * n_response_tokens)


def off_policy_term(
    logp: torch.Tensor, adv: torch.Tensor, eps: float = 0.2, shaping: str = "none", gamma: float = 0.1
) -> torch.Tensor:
    """min[π·A, max(π, 1-ε)·A] per token (teacher prob 1); ``shaping="luffy"``: π/(π+γ)·A, no clip.

    Unshaped, A > 0: the min is π·A, gradient A·π·∇log π. A < 0: the min is max(π, 1-ε)·A, constant (zero
    gradient) while π < 1-ε, so negatives only push down tokens the model already rates above 1-ε.
    LUFFY (verl ``mix_src``) shapes every off-policy token, either sign, and clips none: the gradient is
    A·γπ/(π+γ)²·∇log π, which favours low-probability tokens and never vanishes for A < 0 (no ``eps``).
    """
    p = logp.exp()
    if shaping == "luffy":
        return p / (p + gamma) * adv
    return torch.minimum(p * adv, torch.clamp(p, min=1.0 - eps) * adv)


def k3_kl(logp: torch.Tensor, ref_logp: torch.Tensor) -> torch.Tensor:
    """Schulman's k3 estimator of KL(π_θ ‖ π_ref) per token: exp(d) - d - 1 with d = ref - logp (≥ 0)."""
    d = ref_logp - logp
    return torch.exp(d) - d - 1.0


def token_terms(
    logp: torch.Tensor, adv: torch.Tensor, cfg: ObjectiveConfig, ref_logp: torch.Tensor | None = None
) -> torch.Tensor:
    """The per-token quantity to maximise: the off-policy term (or log π for SFT) minus β·k3."""
    term = logp if cfg.loss == "sft" else off_policy_term(logp, adv, cfg.eps, cfg.shaping, cfg.gamma)
    if cfg.beta > 0:
        if ref_logp is None:
            raise ValueError("beta > 0 needs the reference model's log-probs")
        term = term - cfg.beta * k3_kl(logp, ref_logp)
    return term


def weighted_loss(terms: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """-Σ weight·term: the micro-batch's share of the step loss (weights from ``token_weight``)."""
    return -(terms * weights).sum()


def lr_multiplier(step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warmup to 1 over ``warmup_steps`` (step 0 already trains), then cosine decay to 0 at the end."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
