"""What is sampled and how: the options of a rollout, their checks, seeds, and the transformers backend.

    gen = open_generator(source, Generation("Qwen/Qwen2.5-1.5B-Instruct", SamplingConfig(k=8)), tokenizer)
    for index, completions in gen.stream(jobs, sampling):     # any order; one list of k per question
        ...

Every backend takes ``Job``s (a question's chat-templated prompt, its token ids and its seed) and yields
each question's k ``Completion``s as soon as they are all done, so finished questions are written while
the rest run. The new text only is returned, cut at the first stop token, with ``finish_reason`` "stop"
or "length", so a truncated sample is never mistaken for a finished one.

Samples do not depend on how the work is cut: a question's samples are seeded by (seed, question id)
alone (``question_seed``; sample i gets seed + i, as vLLM's n-sampling does). The transformers backend
generates each question's k samples in calls of its own (k rows of one prompt: no padding, and no other
question in the batch), so a run split into slices or engines, or resumed, draws exactly the samples of
one uninterrupted run on the same hardware. vLLM (``vllm_engine``) and servers (``openai_client``) are
imported only when chosen.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from ..curate.io.checks import check_counts
from ..curate.io.errors import OffcurateError

BACKENDS = ("auto", "transformers", "vllm", "openai")
DTYPES = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class SamplingConfig:
    """What is sampled: k responses of at most ``max_new_tokens``; temperature 0 means greedy."""

    k: int = 8
    max_new_tokens: int = 4096
    temperature: float = 0.6
    top_p: float = 0.95

    def __post_init__(self):
        if self.k < 1 or self.max_new_tokens < 1:
            raise OffcurateError("-k and --max-new-tokens must be at least 1")
        if not (math.isfinite(self.temperature) and self.temperature >= 0):
            raise OffcurateError(f"--temperature must be a finite number >= 0, got {self.temperature}")
        if not (math.isfinite(self.top_p) and 0 < self.top_p <= 1):
            raise OffcurateError(f"--top-p must be a number in (0, 1], got {self.top_p}")


@dataclass(frozen=True)
class Generation:
    """The model and how to sample it: what ``rollout`` and ``eval --model`` share.

    Engine options left ``None`` take their backend's default; one given to a backend that has no use
    for it is refused (it would be silently ignored otherwise)."""

    model: str
    sampling: SamplingConfig
    batch_size: int = 64  # transformers: sequences per generate call (a question's k split in calls)
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"
    tensor_parallel_size: int = 1  # vLLM: GPUs per engine
    data_parallel_size: int = 1  # engines, questions dealt out by hash
    max_model_len: int | None = None  # vLLM: context of the engine (default: longest prompt + max tokens)
    gpu_memory_utilization: float | None = None  # vLLM (0.9)
    prompts_in_flight: int | None = None  # vLLM: prompts handed to the engine at once (4096)
    endpoint: str | None = None  # openai: base URL of the server, e.g. http://host:8000/v1
    api_key_env: str | None = None  # openai: environment variable holding the API key
    concurrency: int | None = None  # openai: requests in flight (64)
    shard_index: int = 0
    num_shards: int = 1

    def __post_init__(self):
        check_counts(
            ("--batch-size", self.batch_size),
            ("--tensor-parallel-size", self.tensor_parallel_size),
            ("--data-parallel-size", self.data_parallel_size),
            ("--max-model-len", self.max_model_len),
            ("--prompts-in-flight", self.prompts_in_flight),
            ("--concurrency", self.concurrency),
            ("--num-shards", self.num_shards),
        )
        if not 0 <= self.shard_index < self.num_shards:
            raise OffcurateError(f"--shard-index must be in [0, {self.num_shards}), got {self.shard_index}")
        if self.seed < 0:
            raise OffcurateError(f"--seed must be >= 0, got {self.seed}")
        memory = self.gpu_memory_utilization
        if memory is not None and not (math.isfinite(memory) and 0 < memory <= 1):
            raise OffcurateError(f"--gpu-memory-utilization must be in (0, 1], got {memory}")
        if self.backend not in BACKENDS:
            raise OffcurateError(f"--backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.dtype not in DTYPES:
            raise OffcurateError(f"--dtype must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        self._check_backend_options()

    def vllm_options_given(self) -> list[str]:
        """The vLLM engine options given a value (the others take vLLM's defaults)."""
        given = {
            "--tensor-parallel-size": self.tensor_parallel_size != 1,
            "--max-model-len": self.max_model_len is not None,
            "--gpu-memory-utilization": self.gpu_memory_utilization is not None,
            "--prompts-in-flight": self.prompts_in_flight is not None,
        }
        return [name for name, on in given.items() if on]

    def _check_backend_options(self) -> None:
        server_only = {
            "--endpoint": self.endpoint is not None,
            "--api-key-env": self.api_key_env is not None,
            "--concurrency": self.concurrency is not None,
        }
        if self.backend == "openai":
            if not self.endpoint:
                raise OffcurateError("--backend openai needs --endpoint URL (e.g. http://localhost:8000/v1)")
            given = self.vllm_options_given()
            if self.data_parallel_size != 1:
                given.append("--data-parallel-size (the server spreads requests itself; raise --concurrency)")
            if self.device != "auto" or self.dtype != "auto":
                given.append("--device/--dtype (the server decides)")
            if given:
                raise OffcurateError(f"--backend openai does not take {', '.join(given)}")
            return
        given = [name for name, on in server_only.items() if on]
        if given:
            raise OffcurateError(f"{', '.join(given)}: options of --backend openai only")
        if self.backend == "transformers" and self.vllm_options_given():
            raise OffcurateError(f"{', '.join(self.vllm_options_given())}: options of --backend vllm only")


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (a stop token was generated) or "length" (cut at max_new_tokens)
    tokens: int  # generated tokens, the stop token excluded


@dataclass(frozen=True)
class Job:
    """One question to sample: its chat-templated prompt (text and ids) and its seed."""

    question_id: str
    question: str
    prompt: str
    prompt_ids: list[int]
    seed: int


class Generator(Protocol):
    def stream(self, jobs: Sequence[Job], sampling: SamplingConfig) -> Iterator[tuple[int, list[Completion]]]:
        """(index into ``jobs``, the question's k completions) for each question as it finishes."""
        ...


def question_seed(seed: int, question_id: str) -> int:
    """The seed of a question's samples: fixed by the run seed and the question, however the run is cut.

    Sample i is drawn with seed + i (vLLM's rule for n > 1), so the value leaves room for k below 2**62."""
    digest = hashlib.sha256(f"{seed}:{question_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 2


def cut_at_stop(ids: list[int], stop_ids: set[int]) -> tuple[list[int], str]:
    """The ids before the first stop id, and why generation ended (pure: unit-tested)."""
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i], "stop"
    return ids, "length"


def generate_options(
    sampling: SamplingConfig, pad_id: int, stop_ids: set[int], rows: int | None = None
) -> dict:
    """Keyword arguments of ``model.generate`` for one call of ``rows`` samples (default k)."""
    greedy = sampling.temperature == 0
    return dict(
        do_sample=not greedy,
        max_new_tokens=sampling.max_new_tokens,
        num_return_sequences=sampling.k if rows is None else rows,
        pad_token_id=pad_id,
        eos_token_id=sorted(stop_ids),
        use_cache=True,
        **({} if greedy else {"temperature": sampling.temperature, "top_p": sampling.top_p}),
    )


def sample_calls(k: int, batch_size: int) -> list[tuple[int, int]]:
    """(first sample index, rows) of each generate call for one question's k samples (pure)."""
    return [(start, min(batch_size, k - start)) for start in range(0, k, batch_size)]


class TransformersGenerator:
    """``model.generate`` on one question at a time (its k samples in calls of ``batch_size`` rows), KV
    cache on. Exact whatever the cut; on a GPU, vLLM is the fast path."""

    def __init__(self, source: str, device: str, dtype: str, batch_size: int, tokenizer=None):
        """``tokenizer``: the one the caller already loaded for templating (loaded here otherwise)."""
        import torch

        from ..train.model import load_model, load_tokenizer, resolve_device, resolve_precision

        self.device = resolve_device(device)
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(source)
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        precision = resolve_precision(resolved_dtype(dtype, self.device.type), self.device)  # bf16 | fp32
        self.model = load_model(source, precision, self.device, attn="sdpa")
        self.model.eval()
        self.model.config.use_cache = True
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        configured = configured if isinstance(configured, list) else [configured]
        self.stop_ids = {i for i in [self.tokenizer.eos_token_id, *configured] if i is not None}
        self.batch_size = batch_size
        self._torch = torch

    def stream(self, jobs: Sequence[Job], sampling: SamplingConfig) -> Iterator[tuple[int, list[Completion]]]:
        torch = self._torch
        for index, job in enumerate(jobs):
            ids = torch.tensor([job.prompt_ids], device=self.device)
            completions = []
            for start, rows in sample_calls(sampling.k, self.batch_size):
                torch.manual_seed(job.seed + start)
                options = generate_options(sampling, self.tokenizer.pad_token_id, self.stop_ids, rows)
                with torch.inference_mode():
                    out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), **options)
                for new in out[:, ids.shape[1] :].tolist():
                    kept, reason = cut_at_stop(new, self.stop_ids)
                    text = self.tokenizer.decode(kept, skip_special_tokens=False)
                    completions.append(Completion(text, reason, len(kept)))
            yield index, completions


def resolved_dtype(dtype: str, device_type: str) -> str:
    """``auto``: bf16 on a GPU, fp32 on CPU (exact and reproducible; CPU bf16 is slow)."""
    if dtype != "auto":
        return dtype
    return "bf16" if device_type == "cuda" else "fp32"


def pick_backend(backend: str, cuda: bool) -> str:
    """``auto``: vLLM when it is importable and a GPU is present, else transformers."""
    if backend not in BACKENDS:
        raise OffcurateError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if backend == "vllm" and not has_vllm:
        raise OffcurateError("--backend vllm: vLLM is not installed (pip install vllm, or --backend auto)")
    if backend == "vllm" and not cuda:
        raise OffcurateError("--backend vllm needs a CUDA GPU; none is visible (or --device cpu was given)")
    if backend == "auto":
        return "vllm" if has_vllm and cuda else "transformers"
    return backend


def open_generator(
    source: str,
    g: Generation,
    plan,
    tokenizer=None,
    max_model_len: int | None = None,
    opens_think: bool = False,
) -> Generator:
    """The planned backend (``plan.Plan``) with the model loaded; ``source`` is a folder or Hub id. vLLM
    gets its fitted context, a server the template's ``<think>`` flag (both decided by the stage)."""
    if plan.backend == "vllm":
        from .vllm_engine import VLLMGenerator

        return VLLMGenerator(source, g, plan.dtype, max_model_len or 0)
    if plan.backend == "openai":
        from .openai_client import OpenAIGenerator

        return OpenAIGenerator(g, opens_think, tokenizer)
    return TransformersGenerator(source, g.device, plan.dtype, g.batch_size, tokenizer)
