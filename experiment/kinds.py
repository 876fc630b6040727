"""Where an experiment's data and base model come from: the kinds a recipe names, and how to add one.

    data:  {kind: sample}                  # the embedded OpenThoughts3-shaped sample (no network)
    data:  {kind: raw, path: data/raw}     # OpenThoughts3 shards you downloaded (`offcurate download`)
    data:  {kind: voted, path: data/voted} # an existing `offcurate vote` output: curation is skipped
    data:  {kind: toy, options: {...}}     # the toy task, written offline (data/toy.py): its sizes
    model: tiny-random                     # built offline into RUN/base-model (else: a folder or Hub id)
    model: toy                             # the toy's base: an SFT warm-up on RUN/data/warmup

A data kind that *writes* its data (a synthetic task) and a model that is *built* (a warm-up from that
task) plug in here, one entry each::

    DATA_KINDS["toy"] = DataKind(write=write_toy_data, options=ToySpec, brings_benchmarks=True, ...)
    MODEL_BUILDERS["toy"] = build_toy_base

``write(out, seed, **data.options)`` fills the folder ``out`` (RUN/data, published atomically by the
runner) with ``out/raw/**.parquet`` in OpenThoughts3's raw layout (what `offcurate filter` reads) and, if
the kind brings its own held-out benchmarks, ``out/benchmarks/*.jsonl`` (what `offcurate eval -b` reads;
evaluated before the recipe's `eval.benchmarks`); ``data.options`` is the recipe's mapping of the kind's
own knobs, checked when the recipe is read: built into the kind's ``options`` dataclass (typed, a
misspelt key named with its closest match), or else bound to ``write``'s signature. ``build(data, out, seed)``
writes a Hugging Face model folder with a chat template into ``out`` (RUN/base-model, published
atomically); ``data`` is RUN/data (written by the data kind; absent for kinds that do not write).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..data.toy import ToySpec, write_toy_data

RAW = "raw"  # RUN/data/raw: the raw shards a writing data kind made
BENCHMARKS = "benchmarks"  # RUN/data/benchmarks/*.jsonl: the benchmarks it brings


@dataclass(frozen=True)
class DataKind:
    """How a recipe's data is had: ``path`` says whether ``data.path`` is needed, ``curate`` whether
    the raw shards go through filter -> vote -> stats, ``write`` makes the data (None: nothing to make)."""

    help: str
    path: bool = False
    curate: bool = True
    write: Callable[..., object] | None = None  # write(out: Path, seed: int, **options)
    brings_benchmarks: bool = False
    options: type | None = None  # a dataclass of the options `write` takes (checked when read)


DATA_KINDS: dict[str, DataKind] = {
    "sample": DataKind("the embedded OpenThoughts3-shaped sample (48 questions x 16 traces)"),
    "raw": DataKind("OpenThoughts3 raw shards in `data.path` (`offcurate download`)", path=True),
    "voted": DataKind(
        "an `offcurate vote` output in `data.path`; curation is skipped", path=True, curate=False
    ),
    "toy": DataKind(
        "the toy task (digit sums): teacher traces with known golds, a warm-up set, held-out benchmarks",
        write=write_toy_data,
        options=ToySpec,
        brings_benchmarks=True,
    ),
}


def _build_tiny_random(data: Path, out: Path, seed: int) -> None:
    from ..train.tiny import write_tiny_model

    write_tiny_model(out, seed=seed)


def _build_toy(data: Path, out: Path, seed: int) -> None:
    from ..train.toy_base import build_toy_base

    build_toy_base(data, out, seed, log=print)


# recipe `model` values that are built into RUN/base-model instead of read from a folder or the Hub
MODEL_BUILDERS: dict[str, Callable[[Path, Path, int], None]] = {
    "tiny-random": _build_tiny_random,
    "toy": _build_toy,
}
# a built model that reads what a data kind wrote: model -> the data kind it needs
BUILT_FROM: dict[str, str] = {"toy": "toy"}  # the toy's base is warmed up on RUN/data/warmup
