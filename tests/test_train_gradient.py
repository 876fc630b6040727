"""The trainer's gradient equals the gradient of shared/method.md's objective, computed independently.

    python -m pytest tests/test_train_gradient.py -q

The reference below writes the formula out by cases, one trace at a time through the plain model (no
packing, no chunked head, no token weights, no ``objective`` import):

    L = -1/Q Σ_q 1/G Σ_i 1/|o_i| Σ_t { π·A_i if A_i >= 0 else max(π, 1-ε)·A_i }

with A_i = (r_i - mean r)/(population std r + 1e-6), + b for an all-positive group; LUFFY shaping
π/(π+γ)·A_i on every token; SFT log π on the positives, G their number. The trainer's side is what a
step runs: the voted shards read by ``StepStream`` (advantages, the used traces, 1/(Q·G·|o|) weights),
packed micro-batches, ``accumulate``. The model is sharpened so that some tokens of a negative trace sit
above 1-ε and some below: the clip's both branches carry (or withhold) gradient, and a wrong sign or a
wrong branch fails the comparison.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from offcurate.train.attention import VARLEN, set_attention
from offcurate.train.compute import accumulate, micro_batches
from offcurate.train.data import RowReader, open_voted
from offcurate.train.model import PackedPolicy, enable_checkpointing, resolve_precision
from offcurate.train.objective import ObjectiveConfig
from offcurate.train.steps import StepStream
from offcurate.train.tiny import build_model

CPU = torch.device("cpu")
VOCAB = 97
# question -> rewards and how each trace's tokens are made: "g" the model's greedy tokens (π high), "r" random
GROUPS = {
    "all-positive": ([1.0, 1.0, 1.0], "grg", [6, 9, 4]),
    "mixed": ([1.0, 0.0, 1.0, 0.0, 0.0], "ggrgr", [7, 8, 5, 10, 6]),
    "one-right": ([0.0, 1.0], "gr", [9, 3]),
}


class DictEncoder:
    """``ChatEncoder``'s interface over fixed ids: question and response texts are keys."""

    def __init__(self, prompts: dict[str, list[int]], responses: dict[str, list[int]]):
        self.prompts, self.responses = prompts, responses

    def encode(self, pairs):
        return [(self.prompts[q], self.responses[r]) for q, r in pairs]


def _sharp_model(seed: int = 3) -> torch.nn.Module:
    model = build_model(VOCAB, seed=seed)
    with torch.no_grad():
        model.model.norm.weight.mul_(8.0)  # peaky next-token distributions: greedy tokens near π = 0.8-1
    set_attention(model, "sdpa")
    return model.train()


def _greedy(model, prompt: list[int], n: int) -> list[int]:
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(n):
            ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
    return ids[len(prompt) :]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """The voted shards on disk and the ids behind their texts."""
    model = _sharp_model()
    g = torch.Generator().manual_seed(0)
    prompts, responses, rows = {}, {}, []
    for q, (rewards, kinds, lengths) in GROUPS.items():
        prompts[q] = torch.randint(0, VOCAB, (4 + len(q) % 3,), generator=g).tolist()
        for i, (r, kind, n) in enumerate(zip(rewards, kinds, lengths)):
            key = f"{q}/{i}"
            random_ids = torch.randint(0, VOCAB, (n,), generator=g).tolist()
            responses[key] = _greedy(model, prompts[q] + [i], n) if kind == "g" else random_ids
            rows.append({"question_id": q, "sample_idx": i, "question": q, "response": key, "reward": r})
    folder = tmp_path_factory.mktemp("voted") / "trajectories"
    folder.mkdir()
    schema = pa.schema(
        [("question_id", pa.string()), ("sample_idx", pa.int64()), ("question", pa.string()),
         ("response", pa.string()), ("reward", pa.float64())]
    )  # fmt: skip
    pq.write_table(pa.Table.from_pylist(rows, schema), folder / "part-0.parquet")
    return folder, DictEncoder(prompts, responses)


def reference_loss(model, encoder: DictEncoder, cfg: ObjectiveConfig) -> tuple[torch.Tensor, list]:
    """method.md's loss by cases, trace by trace; also the (A, π) of every token for the coverage check."""
    total, seen = torch.zeros(()), []
    for q, (rewards, _, _) in GROUPS.items():
        r = torch.tensor(rewards, dtype=torch.float64)
        adv = (r - r.mean()) / (r.std(unbiased=False) + 1e-6)
        if bool((r > 0).all()):
            adv = adv + cfg.bias
        keep = [i for i in range(len(rewards)) if cfg.loss != "sft" or rewards[i] > 0]
        group = torch.zeros(())
        for i in keep:
            prompt, response = encoder.prompts[q], encoder.responses[f"{q}/{i}"]
            ids = torch.tensor([prompt + response])
            logp_all = model(input_ids=ids, use_cache=False).logits[0].float().log_softmax(-1)
            logp = logp_all[len(prompt) - 1 : -1].gather(-1, ids[0, len(prompt) :, None]).squeeze(-1)
            pi, a = logp.exp(), float(adv[i])
            if cfg.loss == "sft":
                term = logp
            elif cfg.shaping == "luffy":
                term = pi / (pi + cfg.gamma) * a
            elif a >= 0:
                term = pi * a
            else:
                term = torch.clamp(pi, min=1.0 - cfg.eps) * a
            seen += [(a, float(p)) for p in pi.detach()]
            group = group + term.mean()
        total = total + group / len(keep)
    return -total / len(GROUPS), seen


def _gradients(loss_fn, model) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad(set_to_none=True)
    loss = loss_fn()
    if isinstance(loss, torch.Tensor) and loss.requires_grad:
        loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return float(loss), grads


def trainer_loss(
    model, folder: Path, encoder: DictEncoder, cfg: ObjectiveConfig, budget: int
) -> torch.Tensor:
    index = open_voted(folder)
    stream = StepStream(
        index, RowReader(index.shards), encoder, cfg, questions_per_step=len(GROUPS), max_len=64
    )
    batch = stream.next_step()
    assert batch.n_questions == len(GROUPS)
    stats = accumulate(
        PackedPolicy(model, resolve_precision("fp32", CPU), chunk=5),
        micro_batches(batch.samples, budget),
        cfg,
        CPU,
    )
    return stats.loss


OBJECTIVES = {
    "bias_half": ObjectiveConfig(bias=0.5),
    "bias_zero": ObjectiveConfig(bias=0.0),
    "wide_eps": ObjectiveConfig(bias=0.5, eps=0.5),
    "luffy": ObjectiveConfig(bias=0.5, shaping="luffy"),
    "sft": ObjectiveConfig(loss="sft"),
}


@pytest.mark.parametrize("cfg", list(OBJECTIVES.values()), ids=list(OBJECTIVES))
@pytest.mark.parametrize("attn, budget", [(VARLEN, 40), ("sdpa", 200)], ids=["varlen_3_rows", "sdpa_1_row"])
def test_trainer_gradient_is_the_formulas(setup, cfg, attn, budget):
    folder, encoder = setup
    model = _sharp_model()
    ref_loss, ref = _gradients(lambda: reference_loss(model, encoder, cfg)[0], model)
    set_attention(model, attn)
    loss, got = _gradients(lambda: trainer_loss(model, folder, encoder, cfg, budget), model)
    assert loss == pytest.approx(ref_loss, rel=1e-5, abs=1e-7)
    assert got.keys() == ref.keys() and ref
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-6, rtol=1e-4, msg=name)


def test_the_batch_exercises_both_clip_branches(setup):
    """The comparison means something: negatives have tokens on both sides of 1-ε, positives too."""
    _, encoder = setup
    _, seen = reference_loss(_sharp_model(), encoder, ObjectiveConfig())
    negative = [p for a, p in seen if a < 0]
    assert any(p > 0.8 for p in negative) and any(p < 0.8 for p in negative)
    assert any(a > 0 and p > 0.8 for a, p in seen) and any(a > 0 and p < 0.8 for a, p in seen)


def test_checkpointed_step_has_the_same_gradient(setup):
    folder, encoder = setup
    cfg = ObjectiveConfig(bias=0.5)
    model = _sharp_model()
    _, plain = _gradients(lambda: trainer_loss(model, folder, encoder, cfg, 40), model)
    enable_checkpointing(model)
    set_attention(model, VARLEN)
    _, ckpt = _gradients(lambda: trainer_loss(model, folder, encoder, cfg, 40), model)
    for name in plain:
        torch.testing.assert_close(ckpt[name], plain[name], atol=1e-6, rtol=1e-4, msg=name)
