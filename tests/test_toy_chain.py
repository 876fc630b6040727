"""The whole chain teaches a model: a CI-sized cut of ``offcurate experiment toy`` (~5 min on 2 cores).

    python -m pytest tests/test_toy_chain.py -q
    TOY_SEED=1 python -m pytest tests/test_toy_chain.py -q -s    # another seed (margins hold over 0-2)

The embedded ``toy`` recipe with fewer questions, steps and samples, and two arms (b = 0.5, b = 0): the
toy data, the warmed-up base, pipeline, Figure 2's rollouts, train, eval, teacher log-probs, comparison,
each the ordinary command's code. It fails when the parts stop fitting: what ``train`` teaches must be what
``eval --model`` samples (chat template, think prefix, end-of-turn learnt, an answer vote's extractor
reads). It asserts

- (a) pass@1 on the held-out toy benchmarks rises far above the base's after off-policy GRPO (b = 0.5),
  on their mean and on the all-positive skill's benchmark;
- (b, log-prob part) on the questions every teacher trace gets right, b = 0.5 raises the mean per-token
  log-prob of those traces well beyond what b = 0 does (b = 0 gives them A = 0);
- the chain checks: samples end by end-of-turn, not max tokens, and carry an answer the extractor reads
  (>= 95% for the base and b = 0.5, >= 75% for every model).
"""

from __future__ import annotations

import json
import os
import sys

import polars as pl
import pytest
import yaml

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.cli import main  # noqa: E402
from offcurate.experiment.recipe import RECIPES  # noqa: E402

SEED = int(os.environ.get("TOY_SEED", "0"))


def cut_recipe() -> dict:
    """The embedded toy recipe, smaller: every key it does not name is the full recipe's."""
    recipe = yaml.safe_load((RECIPES / "toy.yaml").read_text())
    recipe["seed"] = SEED
    # trained-sum (Figure 2's effect) is reported, not asserted: 24 of its questions keep the table filled
    recipe["data"]["options"] = {"bench_per_skill": 48, "trained_bench": 24}
    recipe["base_rollouts"].update(limit=24)
    recipe["teacher_logprobs"].update(questions=32)
    recipe["train"].update(save_every=0)  # the arms train as in the full recipe: a shorter train did not
    recipe["arms"] = [arm for arm in recipe["arms"] if arm["name"] in ("bias", "no-bias")]  # hold (a)
    recipe["eval"].update(k=2)
    return recipe


@pytest.mark.slow
def test_toy_chain_teaches(tmp_path, monkeypatch):
    recipe = tmp_path / "toy-ci.yaml"
    recipe.write_text(yaml.safe_dump(cut_recipe(), sort_keys=False))
    run = tmp_path / "run"
    monkeypatch.setattr(sys, "argv", ["offcurate", "experiment", str(recipe), "-o", str(run)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0

    compared = pl.read_parquet(run / "comparison" / "compare.parquet")
    pass_at_1 = {(b, m): p for b, m, p in compared.select("benchmark", "model", "pass_at_1").iter_rows()}
    logp = {
        m: lp
        for m, kind, lp in pl.read_parquet(run / "effects" / "teacher_logprobs.parquet")
        .select("model", "kind", "logp_per_token")
        .iter_rows()
        if kind == "all-positive"
    }
    report = {"pass@1": {f"{b} {m}": round(p, 3) for (b, m), p in pass_at_1.items()}, "logp": logp}
    print(json.dumps(report))
    # (a): far above the base over the held-out benchmarks; the all-positive skill (sum) most of all.
    # The mixed skill (signed) alone is not asserted: over seeds 0-2 its change under b = 0.5 ran from
    # -0.05 to +0.14 (README "The toy task"), a finding reported, not a margin to tune towards.
    gains = {b: pass_at_1[b, "bias"] - pass_at_1[b, "base"] for b in ("toy-sum", "toy-signed")}
    assert sum(gains.values()) / len(gains) >= 0.1 and gains["toy-sum"] >= 0.2, report
    # (b): b = 0.5 takes in the all-positive traces; b = 0 (A = 0 there) loses them
    gain_bias, gain_none = logp["bias"] - logp["base"], logp["no-bias"] - logp["base"]
    assert gain_bias >= 0.03 and gain_bias >= gain_none + 0.1, report
    # the chain: the base's and b = 0.5's samples stop at the end of the turn and carry an answer the
    # extractor reads; every model's mostly do (b = 0's collapse of the sum skill can cost it its stop:
    # 84% ended on toy-sum in the full recipe's seed 0, 99-100% in this cut over seeds 0-2)
    chain = compared.select("model", "end_of_turn", "answered")
    assert (chain.filter(pl.col("model").is_in(["base", "bias"])).drop("model") >= 0.95).to_numpy().all(), (
        chain
    )
    assert (chain.drop("model") >= 0.75).to_numpy().all(), chain
