"""A tiny experiment recipe for tests: the embedded sample, tiny-random, a 3-problem benchmark, 2 steps.

``plugged_in`` registers a data kind that writes its own data and brings its benchmark, and a built
model, the way the toy task plugs in (``offcurate.experiment.kinds``): the end-to-end test runs them.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml

BENCHMARK = [
    {"problem": "What is 2 + 3?", "answer": "5"},
    {"problem": "What is half of 1?", "answer": "\\frac{1}{2}"},
    {"problem": "How many sides has a hexagon?", "answer": 6},
]
SMALL_TRAIN = {
    "max_steps": 2,
    "questions_per_step": 2,
    "max_len": 2048,
    "tokens_per_micro_batch": 4096,
    "save_every": 1,
    "lr": 1e-3,
    "warmup_steps": 0,
    "attn": "varlen",
}
RECIPE = {
    "description": "test: two arms on the embedded sample",
    "seed": 0,
    "data": {"kind": "sample", "workers": 1},
    "model": "tiny-random",
    # batch_size 2 with k 2: one question per batch, so a sampling run can stop between batches
    "base_rollouts": {"k": 2, "max_new_tokens": 4, "batch_size": 2, "limit": 4},
    "mix": {"bucket_by": "base_pass_rate", "max_per_question": 2},
    "teacher_logprobs": {"questions": 2, "max_len": 2048},
    "train": SMALL_TRAIN,
    "arms": [{"name": "bias", "train": {"bias": 0.5}}, {"name": "sft", "train": {"loss": "sft"}}],
    "eval": {"benchmarks": ["bench.jsonl"], "k": 2, "max_new_tokens": 4, "batch_size": 2, "workers": 1},
}


def write_recipe(folder: Path, recipe: dict | None = None, name: str = "recipe.yaml") -> Path:
    """The recipe (default: ``RECIPE``) and its benchmark file in ``folder``; returns the recipe's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "bench.jsonl").write_text("\n".join(json.dumps(r) for r in BENCHMARK) + "\n")
    path = folder / name
    path.write_text(yaml.safe_dump(copy.deepcopy(recipe or RECIPE), sort_keys=False))
    return path


PLUGGED = "sample-and-bench"  # the data kind and the model builder ``plugged_in`` registers


def write_sample_and_bench(out: Path, seed: int, problems: int = 3) -> None:
    """A writing data kind: the embedded sample as raw shards, and a held-out benchmark of its own
    (its first ``problems`` problems: a knob the recipe sets in ``data.options``)."""
    from offcurate.curate.download import write_sample

    write_sample(out / "raw")
    (out / "benchmarks").mkdir()
    rows = "\n".join(json.dumps(r) for r in BENCHMARK[:problems])
    (out / "benchmarks" / "held_out.jsonl").write_text(rows + "\n")


def build_tiny(data: Path, out: Path, seed: int) -> None:
    """A built model that reads the data kind's output, as a warm-up on the task would."""
    from offcurate.train.tiny import write_tiny_model

    assert (data / "raw").is_dir() and (data / "benchmarks").is_dir()
    write_tiny_model(out, seed=seed)


def plugged_in(monkeypatch: pytest.MonkeyPatch) -> None:
    from offcurate.experiment import kinds

    kind = kinds.DataKind(
        "test: the sample, and a benchmark", write=write_sample_and_bench, brings_benchmarks=True
    )
    monkeypatch.setitem(kinds.DATA_KINDS, PLUGGED, kind)
    monkeypatch.setitem(kinds.MODEL_BUILDERS, PLUGGED, build_tiny)
