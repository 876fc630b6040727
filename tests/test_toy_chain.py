"""The whole chain teaches a model: the toy task, a warmed-up base, pipeline, train (b = 0.5 and b = 0), eval.

    python -m pytest tests/test_toy_chain.py -q                 # ~3 min on 2 cores
    TOY_SEED=1 python -m pytest tests/test_toy_chain.py -q      # another seed (the margins hold over 0-2)

A CI-sized cut of the toy study (bench/toy_study.py; ``offcurate experiment toy`` runs the full one). Every
stage is the ordinary command through the CLI's entry point, so the test fails when the parts stop fitting:
what ``train`` teaches must be what ``eval --model`` samples (chat template, think prefix, end-of-turn
learnt, an answer vote's extractor reads). It asserts

- (a) pass@1 on the held-out toy benchmarks rises far above the base's after off-policy GRPO (b = 0.5);
- (b, log-prob part) on the questions every teacher trace gets right, b = 0.5 raises the mean per-token
  log-prob of those traces well beyond what b = 0 does (b = 0 gives them A = 0);
- the chain checks: samples end by end-of-turn, not max tokens, and carry an answer the extractor reads.
"""

from __future__ import annotations

import json
import os
import sys

import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.cli import main  # noqa: E402
from offcurate.data.toy import ToySpec, write_toy_data  # noqa: E402

SEED = int(os.environ.get("TOY_SEED", "0"))
DATA = ToySpec(train_per_skill=32, warmup_per_skill=3000, bench_per_skill=32)
BASE_STEPS = 500
TRAIN = ["--max-steps", "40", "--questions-per-step", "8", "--lr", "1e-3", "--warmup-steps", "5",
         "--max-len", "256", "--tokens-per-micro-batch", "8192", "--save-every", "0",
         "--no-gradient-checkpointing", "--seed", str(SEED)]  # fmt: skip
SAMPLING = ["-k", "2", "--temperature", "0.6", "--max-new-tokens", "96", "--seed", str(SEED)]


def cli(monkeypatch, *args) -> None:
    monkeypatch.setattr(sys, "argv", ["offcurate", *map(str, args)])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 0, f"offcurate {' '.join(map(str, args))} failed"


@pytest.mark.slow
def test_toy_chain_teaches(tmp_path, monkeypatch):
    import torch

    from offcurate.train.toy_base import BaseSpec, build_toy_base
    from offcurate.train.trace_logprob import summarise, trace_logprobs

    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = tmp_path / "data"
    write_toy_data(data, SEED, DATA)
    base = build_toy_base(data, tmp_path / "base", SEED, BaseSpec(steps=BASE_STEPS))
    cli(monkeypatch, "pipeline", "-i", data / "raw", "-o", tmp_path / "curated", "--workers", "2")
    voted = tmp_path / "curated" / "voted"
    models = {"base": base}
    for name, bias in (("b05", "0.5"), ("b0", "0")):
        cli(monkeypatch, "train", "-i", voted, "-o", tmp_path / name, "--model", base, "--bias", bias, *TRAIN)
        models[name] = tmp_path / name / "final"
    benchmarks = [x for s in ("sum", "signed") for x in ("-b", data / "benchmarks" / f"toy-{s}.jsonl")]
    evals = {}
    for name in ("base", "b05"):
        evals[name] = tmp_path / f"eval-{name}"
        cli(monkeypatch, "eval", *benchmarks, "--model", models[name], *SAMPLING, "-o", evals[name])
    logp = {name: summarise(trace_logprobs(str(m), voted))["all-positive"] for name, m in models.items()}

    base_eval = pl.read_parquet(evals["base"] / "summary.parquet")
    trained = pl.read_parquet(evals["b05"] / "summary.parquet")
    report = {
        "pass@1 base": base_eval["pass_at_1"].to_list(),
        "pass@1 b05": trained["pass_at_1"].to_list(),
        "logp/token all-positive": {k: round(v["logp_per_token"], 3) for k, v in logp.items()},
    }
    print(json.dumps(report))
    # (a): far above the base on the held-out benchmarks, on average and on each
    assert trained["pass_at_1"].mean() >= base_eval["pass_at_1"].mean() + 0.2, report
    assert (trained["pass_at_1"] > base_eval["pass_at_1"]).all(), report
    # (b): b = 0.5 takes in the all-positive traces, b = 0 (A = 0 there) far less
    gain_b05 = logp["b05"]["logp_per_token"] - logp["base"]["logp_per_token"]
    gain_b0 = logp["b0"]["logp_per_token"] - logp["base"]["logp_per_token"]
    assert gain_b05 >= 0.05 and gain_b05 >= 2 * gain_b0 + 0.02, report
    # the chain: samples stop at the end of the turn and carry an answer the extractor reads
    for frame in (base_eval, trained):
        assert frame["truncated"].sum() <= 0.05 * frame["samples"].sum(), frame  # counts of samples
        assert frame["no_answer"].sum() <= 0.05 * frame["samples"].sum(), frame
