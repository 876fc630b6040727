"""The toy study by hand: data, base, curation, the arms, eval and trace log-probs, then one table.

    python bench/toy_study.py -o runs/toy-study --seed 0                 # the full toy (~10 min, 2 cores)
    python bench/toy_study.py -o runs/toy-ci --seed 0 --size ci          "fast": dict(
        data=dict(train_per_skill=320, traces=8, min_wrong=1, max_wrong=3, warmup_per_skill=2400,
                  warmup_min_terms=3, warmup_max_terms=4, warmup_long_share=0.05, min_terms=5,
                  max_terms=6, bench_per_skill=64, seen_per_skill=64),
        base=dict(steps=150),
        train=dict(max_steps=40, questions_per_step=8, lr=1e-3, warmup_steps=4),
        eval=dict(k=4, temperature=0.6, max_new_tokens=64),
    ),
    # the CI cut's sizes
    python bench/toy_study.py -o runs/toy-study --arms b05,b0            # some arms only

Every stage is the ordinary command (``offcurate pipeline``, ``train``, ``eval --model``), run in this
process through the CLI's own entry point, so the numbers are what a user gets; ``offcurate experiment
toy`` (the recipe runner) replaces this script once it exists, with the values of ``SIZES`` as its recipe.
Stages already done under ``-o`` are kept (delete a folder to redo it). Prints and writes ``study.json``:
per model, pass@1 on the held-out toy benchmarks, pass@1 on the trained all-positive (``sum``) questions
where the base is right only sometimes, the mean per-token log-prob of the teacher's traces (all-positive,
mixed right, mixed wrong), and the chain checks (share of samples ended by end-of-turn, with an answer).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from functools import partial
from pathlib import Path

SIZES = {
    # the full toy: what `offcurate experiment toy` should run
    "full": dict(
        data=dict(train_per_skill=256, warmup_per_skill=3000, bench_per_skill=64),
        base=dict(steps=500),
        train=dict(max_steps=120, questions_per_step=8, lr=3e-4, warmup_steps=10),
        eval=dict(k=8, temperature=0.6, max_new_tokens=96),
    ),
    "fast": dict(
        data=dict(
            train_per_skill=320,
            traces=8,
            min_wrong=1,
            max_wrong=3,
            warmup_per_skill=2400,
            warmup_min_terms=3,
            warmup_max_terms=4,
            warmup_long_share=0.05,
            min_terms=5,
            max_terms=6,
            bench_per_skill=64,
            seen_per_skill=64,
        ),
        base=dict(steps=150),
        train=dict(max_steps=40, questions_per_step=8, lr=1e-3, warmup_steps=4),
        eval=dict(k=4, temperature=0.6, max_new_tokens=64),
    ),
    # the CI cut (tests/test_toy_chain.py)
    "ci": dict(
        data=dict(train_per_skill=32, warmup_per_skill=600, bench_per_skill=32),
        base=dict(steps=200),
        train=dict(max_steps=40, questions_per_step=8, lr=1e-3, warmup_steps=5),
        eval=dict(k=2, temperature=0.6, max_new_tokens=96),
    ),
}
ARMS = {
    "sft": ["--loss", "sft"],
    "b0": ["--bias", "0"],
    "b05": ["--bias", "0.5"],
    "luffy": ["--bias", "0.5", "--shaping", "luffy"],
}


def cli(*args: object) -> None:
    """``offcurate ARGS`` in this process; a non-zero exit raises."""
    from offcurate.cli import main

    argv, sys.argv = sys.argv, ["offcurate", *map(str, args)]
    try:
        main()
    except SystemExit as done:
        if done.code not in (0, None):
            raise RuntimeError(f"offcurate {' '.join(map(str, args))}: exit {done.code}") from None
    finally:
        sys.argv = argv


def _timed(times: dict, name: str, fn) -> None:
    start = time.perf_counter()
    fn()
    times[name] = round(time.perf_counter() - start, 1)


def run_study(out: Path, seed: int, size: str = "full", arms: list[str] | None = None) -> dict:
    """Run (or continue) the study under ``out``; returns the table as a dict."""
    from offcurate.data.toy import ToySpec, write_toy_data
    from offcurate.train.toy_base import BaseSpec, build_toy_base, is_complete

    cfg, arms = SIZES[size], arms or list(ARMS)
    out.mkdir(parents=True, exist_ok=True)
    data, base, curated = out / "data", out / "base", out / "curated"
    times: dict[str, float] = {}
    if not (data / "toy.json").is_file():
        _timed(times, "data", lambda: write_toy_data(data, seed, ToySpec(**cfg["data"])))
    if not is_complete(base):
        _timed(times, "base", lambda: build_toy_base(data, base, seed, BaseSpec(**cfg["base"]), log=print))
    if not (curated / "pipeline.json").is_file():
        _timed(
            times, "pipeline", lambda: cli("pipeline", "-i", data / "raw", "-o", curated, "--workers", "2")
        )
    t = cfg["train"]
    train_args = [
        *("--max-steps", t["max_steps"], "--questions-per-step", t["questions_per_step"], "--lr", t["lr"]),
        *("--warmup-steps", t["warmup_steps"], "--max-len", 256, "--tokens-per-micro-batch", 8192),
        *("--save-every", 0, "--seed", seed, "--no-gradient-checkpointing"),
    ]
    models = {"base": base}
    for arm in arms:
        run = out / "arms" / arm
        if not (run / "final").is_dir():
            args = ("train", "-i", curated / "voted", "-o", run, "--model", base, *train_args, *ARMS[arm])
            _timed(times, f"train {arm}", partial(cli, *args, "--overwrite"))
        models[arm] = run / "final"
    e = cfg["eval"]
    benches = [data / "benchmarks" / "toy-sum.jsonl", data / "benchmarks" / "toy-signed.jsonl"]
    benches += [data / "seen" / "seen-sum.jsonl", data / "seen" / "seen-signed.jsonl"]
    sampling = ["-k", e["k"], "--temperature", e["temperature"], "--max-new-tokens", e["max_new_tokens"]]
    for name, model in models.items():
        folder = out / "eval" / name
        if not (folder / "summary.json").is_file():
            args = ("eval", *[x for b in benches for x in ("-b", b)], "--model", model, *sampling)
            _timed(times, f"eval {name}", partial(cli, *args, "--seed", seed, "-o", folder, "--overwrite"))
    table = {"seed": seed, "size": size, "times": times, "models": {}}
    logp_file = out / "trace_logprob.json"
    logp = json.loads(logp_file.read_text()) if logp_file.is_file() else {}
    for name, model in models.items():
        if name not in logp:
            from offcurate.train.trace_logprob import summarise, trace_logprobs

            start = time.perf_counter()
            logp[name] = summarise(trace_logprobs(str(model), curated / "voted"))
            times[f"logprob {name}"] = round(time.perf_counter() - start, 1)
            logp_file.write_text(json.dumps(logp, indent=1))
    table["models"] = {name: _row(out / "eval", name, logp[name]) for name in models}
    (out / "study.json").write_text(json.dumps(table, indent=1) + "\n")
    return table


def _row(evals: Path, name: str, logp: dict) -> dict:
    """One model's numbers: pass@1 per benchmark, pass@1 on the base-sometimes sum questions, chain checks."""
    import polars as pl

    summary = pl.read_parquet(evals / name / "summary.parquet")
    row = {f"pass@1 {b}": round(p, 3) for b, p in zip(summary["benchmark"], summary["pass_at_1"])}
    results = pl.read_parquet(evals / name / "results.parquet")
    base = pl.read_parquet(evals / "base" / "results.parquet").select(
        "benchmark", "question", pl.col("pass_at_1").alias("base_pass")
    )
    joined = results.join(base, on=["benchmark", "question"])
    sometimes = joined.filter(
        (pl.col("benchmark") == "seen-sum") & pl.col("base_pass").is_between(0, 1, "none")
    )
    row["seen-sum base-sometimes questions"] = sometimes.height
    row["pass@1 seen-sum base-sometimes"] = round(float(sometimes["pass_at_1"].mean() or 0.0), 3)
    samples = summary["samples"].sum()  # truncated and no_answer are counts of samples
    row["ended by end-of-turn"] = round(1.0 - summary["truncated"].sum() / samples, 3)
    row["with an answer"] = round(1.0 - summary["no_answer"].sum() / samples, 3)
    for kind, stats in logp.items():
        row[f"logp/token {kind}"] = round(stats["logp_per_token"], 3)
        row[f"prob/token {kind}"] = round(stats["prob_per_token"], 3)
    return row


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", choices=sorted(SIZES), default="full")
    parser.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    parser.add_argument("--set", default="{}", help='JSON over the size, e.g. {"train": {"lr": 1e-3}}')
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    for part, values in json.loads(args.set).items():
        SIZES[args.size][part] = {**SIZES[args.size][part], **values}
    table = run_study(args.output, args.seed, args.size, args.arms.split(","))
    print(json.dumps(table, indent=1))


if __name__ == "__main__":
    main()
