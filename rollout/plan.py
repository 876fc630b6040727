"""What a rollout will run on, decided and checked before anything is created, and what a resume must repeat.

    plan = plan_engines(generation)          # backend, device, dtype, engines x GPUs; one-line errors
    record = numerics(generation, plan)      # the options that change samples, for rollout.json

A wrong ``--backend``, a missing vLLM, ``--device cuda`` without a GPU, too few GPUs for
``--tensor-parallel-size x --data-parallel-size``: each is refused here, before the hidden ``.OUT.partial``
folder exists, so the corrected command is not refused "an unfinished rollout is there".

The record holds every option that changes samples: the model's identity (a Hub commit, or a digest of a
local folder's files), backend, device kind, dtype, and the engine options that change numerics. Options
that only change speed (``--data-parallel-size``, ``--gpu-memory-utilization``, ``--prompts-in-flight``,
``--concurrency``) may change on ``--resume``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..curate.io.errors import OffcurateError
from .generate import Generation, pick_backend, resolved_dtype

_WHOLE_FILE = 8 << 20  # files up to this size are digested whole; larger ones (weights) by size, head, tail
_EDGE = 1 << 20
_WEIGHTS_KEYS = ("config.json", "tokenizer_config.json")


@dataclass(frozen=True)
class Plan:
    backend: str  # transformers | vllm | openai
    device: str  # cpu | cuda | server
    hardware: str  # "cpu", the GPU's name, or "server"
    dtype: str  # bf16 | fp32 | server
    engines: int  # processes, each with its own model
    gpus_per_engine: int  # 0 on CPU and for a server


def backend_for_model(model: str, asked: str, picked: str) -> str:
    """vLLM loads whole models, not a peft adapter folder (a LoRA run's final/): ``auto`` then samples with
    transformers, which loads the adapter on its base; an explicit ``--backend vllm`` is refused."""
    from ..train.lora import adapter_base

    if picked != "vllm" or adapter_base(model) is None:
        return picked
    if asked == "auto":
        return "transformers"
    raise OffcurateError(
        f"{model}: a LoRA adapter; --backend vllm loads whole models: give the merged model "
        "(`offcurate train --merge` writes RUN/final-merged/) or use --backend transformers"
    )


def plan_engines(g: Generation) -> Plan:
    """Resolve ``auto`` and check the machine can run what was asked (imports torch, not the model)."""
    if g.backend == "openai":
        if g.api_key_env is not None and not os.environ.get(g.api_key_env):
            raise OffcurateError(f"--api-key-env {g.api_key_env}: that environment variable is not set")
        return Plan("openai", "server", "server", "server", 1, 0)
    import torch

    from ..train.model import resolve_device

    device = resolve_device(g.device) if g.backend != "vllm" or g.device != "auto" else None
    cuda = device.type == "cuda" if device is not None else torch.cuda.is_available()
    backend = backend_for_model(g.model, g.backend, pick_backend(g.backend, cuda))
    gpus = torch.cuda.device_count() if cuda else 0
    if backend == "vllm":
        if g.device not in ("auto", "cuda"):
            raise OffcurateError(
                f"--backend vllm takes its GPUs from CUDA_VISIBLE_DEVICES, not --device {g.device}"
            )
        need = g.tensor_parallel_size * g.data_parallel_size
        if need > gpus:
            raise OffcurateError(
                f"--tensor-parallel-size {g.tensor_parallel_size} x --data-parallel-size "
                f"{g.data_parallel_size} needs {need} GPUs; {gpus} visible"
            )
        return Plan("vllm", "cuda", torch.cuda.get_device_name(0), resolved_dtype(g.dtype, "cuda"),
                    g.data_parallel_size, g.tensor_parallel_size)  # fmt: skip
    given = g.vllm_options_given()
    if given:
        raise OffcurateError(
            f"{', '.join(given)} need the vLLM backend; this run uses transformers "
            "(vLLM is not installed, or no GPU is visible)"
        )
    assert device is not None
    if device.type == "cuda":
        if g.data_parallel_size > 1 and device.index is not None:
            raise OffcurateError(
                f"--device {g.device} holds one engine; give --device cuda with --data-parallel-size"
            )
        if g.data_parallel_size > gpus:
            raise OffcurateError(
                f"--data-parallel-size {g.data_parallel_size} needs that many GPUs; {gpus} visible"
            )
        name = torch.cuda.get_device_name(device)
        return Plan("transformers", "cuda", name, resolved_dtype(g.dtype, "cuda"), g.data_parallel_size, 1)
    return Plan("transformers", "cpu", "cpu", resolved_dtype(g.dtype, "cpu"), g.data_parallel_size, 0)


def numerics(g: Generation, plan: Plan) -> dict:
    """Engine options that change the samples drawn (beyond model, sampling options and seed)."""
    record: dict = {"backend": plan.backend, "device": plan.hardware, "dtype": plan.dtype}
    if plan.backend == "transformers":
        record["rows_per_call"] = min(g.batch_size, g.sampling.k)  # the RNG stream of a call
    if plan.backend == "vllm":
        record["tensor_parallel_size"] = g.tensor_parallel_size
        record["max_model_len"] = g.max_model_len  # None: fitted to the prompts, never cuts a sample
        record["batch_invariant"] = os.environ.get("VLLM_BATCH_INVARIANT", "0") == "1"
    return record


def model_identity(model: str, source: str) -> str:
    """What names the weights: a local folder's digest, or a Hub id at the commit in the local cache."""
    path = Path(source)
    if path.is_dir():
        return f"{'tiny-random ' if model == 'tiny-random' else ''}sha256:{folder_digest(path)}"
    if model != source or not path.exists():
        revision = _hub_revision(source)
        return f"{source}@{revision}" if revision else source
    return source


def folder_digest(folder: Path) -> str:
    """Digest of a model folder's files: small ones whole, weight files by size and their first and last
    MiB (a retrained checkpoint differs there), so a 64 GB model is fingerprinted in milliseconds."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        size = path.stat().st_size
        h.update(f"{path.name}\0{size}\0".encode())
        with path.open("rb") as handle:
            if size <= _WHOLE_FILE:
                h.update(handle.read())
            else:
                h.update(handle.read(_EDGE))
                handle.seek(size - _EDGE)
                h.update(handle.read(_EDGE))
    return h.hexdigest()[:16]


def _hub_revision(repo: str) -> str | None:
    """The commit of ``repo`` in the local Hugging Face cache (what transformers loaded), if any."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in _WEIGHTS_KEYS:
        try:
            found = try_to_load_from_cache(repo, name)
        except Exception:  # an id the cache cannot hold (e.g. a path-like string)
            return None
        if isinstance(found, str) and Path(found).parent.parent.name == "snapshots":
            return Path(found).parent.name
    return None
