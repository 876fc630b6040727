"""How likely a model finds the teacher's traces: per-token log-probs of a vote output's trajectories.

    python -m offcurate.train.trace_logprob runs/toy/voted runs/toy/base runs/toy/b05/final
    from offcurate.train.trace_logprob import trace_logprobs, summarise, write_trace_logprobs
    rows = trace_logprobs("runs/toy/b05/final", Path("runs/toy/voted"))      # one row per trace
    summarise(rows)    # {"all-positive": {"logp_per_token": -0.21, "prob_per_token": 0.87, ...}, ...}
    write_trace_logprobs(model, voted, out)   # out/traces.parquet, out/summary.parquet (experiment)

Why: the all-positive bias is about what a run learns from the questions every teacher trace gets right.
``--bias 0`` gives them A = 0 (nothing), ``--bias b`` trains them like π-weighted SFT; the mean log-prob
per token of those traces, before and after, says how much of them the student took in. The traces are
tokenised exactly as ``train`` tokenises them (chat template, end-of-turn suffix) and scored with the
trainer's packed forward (``packed_logprobs``), so the numbers are the training objective's π.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pyarrow as pa
import torch

from ..curate.io.errors import OffcurateError
from ..curate.io.output import atomic_output
from ..curate.io.report import progress
from .data import ChatEncoder, RowReader, open_voted
from .model import (
    PackedPolicy,
    load_model,
    load_tokenizer,
    packed_logprobs,
    resolve_device,
    resolve_precision,
)
from .packing import Sample, build_micro_batch, pack


def trace_logprobs(
    model: str | Path,
    voted: Path,
    budget: int = 8192,
    max_len: int = 4096,
    questions: int | None = None,
    device: str = "cpu",
) -> list[dict]:
    """One row per trajectory of an ok question: ``question_id``, ``sample_idx``, ``reward``,
    ``all_positive``, ``tokens``, ``logp`` (sum over the response tokens), ``prob`` (sum of π),
    ``low`` (tokens with π < 0.1). Traces longer than ``max_len`` tokens are skipped. ``questions``: only
    the first N all-positive and the first N mixed questions (in file order), to keep it quick."""
    device = resolve_device(device)
    precision = resolve_precision("auto", device)
    tokenizer = load_tokenizer(model)
    net = load_model(model, precision, device, "auto").eval()
    policy = PackedPolicy(net, precision, chunk=budget)
    index = open_voted(Path(voted))
    reader, encoder = RowReader(index.shards), ChatEncoder(tokenizer)
    rows, samples, taken = [], [], {True: 0, False: 0}
    for group in index.groups:
        all_positive = all(r > 0 for r in group.rewards)
        if questions is not None and taken[all_positive] >= questions:
            continue
        taken[all_positive] += 1
        encoded = encoder.encode(reader.fetch(group.refs))
        for si, r, (prompt, response) in zip(group.sample_idx, group.rewards, encoded):
            if len(prompt) + len(response) > max_len or not response:
                continue
            samples.append(Sample(prompt + response, len(prompt), 0.0, 0.0))
            rows.append({"question_id": group.question_id, "sample_idx": si, "reward": r,
                         "all_positive": all_positive, "tokens": len(response)})  # fmt: skip
    with torch.no_grad(), progress() as bar:
        task = bar.add_task(f"trace log-probs: {model}", total=len(samples))
        for members in pack([len(s.input_ids) for s in samples], budget):
            batch = build_micro_batch([samples[i] for i in members]).to(device)
            logp = packed_logprobs(policy, batch).float().cpu()
            for part, k in zip(logp.split([rows[i]["tokens"] for i in members]), members):
                low = int((part < math.log(0.1)).sum())
                rows[k].update(logp=float(part.sum()), prob=float(part.exp().sum()), low=low)
            bar.advance(task, len(members))
    return rows


def summarise(rows: list[dict]) -> dict[str, dict[str, float]]:
    """Token-weighted means per kind of trace: all-positive, mixed right, mixed wrong."""
    kinds = {
        "all-positive": lambda r: r["all_positive"],
        "mixed-right": lambda r: not r["all_positive"] and r["reward"] > 0,
        "mixed-wrong": lambda r: not r["all_positive"] and r["reward"] <= 0,
    }
    out = {}
    for kind, keep in kinds.items():
        chosen = [r for r in rows if keep(r)]
        tokens = sum(r["tokens"] for r in chosen)
        if not tokens:
            continue
        out[kind] = {
            "traces": len(chosen),
            "tokens": tokens,
            "logp_per_token": sum(r["logp"] for r in chosen) / tokens,
            "prob_per_token": sum(r["prob"] for r in chosen) / tokens,
            "low_prob_share": sum(r["low"] for r in chosen) / tokens,
        }
    return out


KINDS = ("all-positive", "mixed-right", "mixed-wrong")
TRACE_SCHEMA = pa.schema(
    [("question_id", pa.string()), ("sample_idx", pa.int64()), ("reward", pa.float64()),
     ("all_positive", pa.bool_()), ("tokens", pa.int64()), ("logp", pa.float64()), ("prob", pa.float64()),
     ("low", pa.int64())]
)  # fmt: skip
SUMMARY_SCHEMA = pa.schema(
    [("kind", pa.string()), ("traces", pa.int64()), ("tokens", pa.int64()), ("logp_per_token", pa.float64()),
     ("prob_per_token", pa.float64()), ("low_prob_share", pa.float64())]
)  # fmt: skip


LOGPROB_CARD = """\
`traces.parquet`: one row per teacher trace of an ok question (question_id, sample_idx, reward, whether its
group is all-positive, response tokens, the sum of log π and of π over them, tokens with π < 0.1).
`summary.parquet`: per kind of trace (all-positive, mixed-right, mixed-wrong), token-weighted means.
"""


def write_trace_logprobs(
    model: str | Path,
    voted: Path,
    out: Path,
    questions: int | None = None,
    max_len: int = 4096,
    device: str = "auto",
) -> dict:
    """Score ``voted``'s traces under ``model`` into the (new, empty) folder ``out``: ``traces.parquet``
    (one row per trace) and ``summary.parquet`` (one row per kind of trace, in ``KINDS`` order). Written
    with pyarrow (the GPU image has no polars), with a dataset card naming the two configs."""
    import pyarrow.parquet as pq

    from ..curate.io.card import write_card

    rows = trace_logprobs(model, Path(voted), max_len=max_len, questions=questions, device=device)
    summary = summarise(rows)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, TRACE_SCHEMA), out / "traces.parquet")
    kinds = [{"kind": kind, **summary[kind]} for kind in KINDS if kind in summary]
    pq.write_table(pa.Table.from_pylist(kinds, SUMMARY_SCHEMA), out / "summary.parquet")
    configs = {"traces": ("traces.parquet", TRACE_SCHEMA), "summary": ("summary.parquet", SUMMARY_SCHEMA)}
    write_card(out, f"Teacher traces under {model}", LOGPROB_CARD, configs)
    return summary


def _positive(text: str) -> int:
    """An argparse type: a whole number >= 1 (0 or a negative count would score nothing)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m offcurate.train.trace_logprob", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("voted", type=Path, help="an offcurate vote output")
    parser.add_argument("models", nargs="+", help="model folders (or Hub ids) to score the traces with")
    parser.add_argument(
        "--questions", type=_positive, help="only the first N all-positive and N mixed questions"
    )
    parser.add_argument(
        "--max-len", type=_positive, default=4096, help="skip traces longer than this (tokens)"
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    parser.add_argument("-o", "--output", type=Path, help="one model: write traces/summary.parquet here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing -o folder")
    args = parser.parse_args(argv)
    if args.output is not None and len(args.models) != 1:
        parser.error("-o takes one model")
    try:
        for model in args.models:
            print(json.dumps({"model": model, **_score(model, args)}))
    except OffcurateError as err:  # a bad folder or model: one line, as the offcurate command says it
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


def _score(model: str, args: argparse.Namespace) -> dict:
    if args.output is None:
        rows = trace_logprobs(
            model, args.voted, max_len=args.max_len, questions=args.questions, device=args.device
        )
        return summarise(rows)
    # a killed run leaves no folder that looks finished
    with atomic_output(args.output, args.overwrite) as tmp:
        return write_trace_logprobs(model, args.voted, tmp, args.questions, args.max_len, args.device)


if __name__ == "__main__":
    main()
