"""Sampling k responses per prompt: a transformers backend (tested here) and a vLLM one (used when present).

    gen = open_generator("Qwen/Qwen2.5-1.5B-Instruct", backend="auto", device="auto", dtype="auto")
    for completions in gen.generate(prompts, SamplingConfig(k=8, max_new_tokens=4096), seed=0):
        ...  # one list of k Completions per prompt, in prompt order

Both backends take chat-templated prompt *strings* and return the new text only, cut at the first stop
token (eos, or any id in the model's generation config), with ``finish_reason`` "stop" or "length" so a
truncated sample is never mistaken for a finished one. transformers: left-padded batches, KV cache,
``num_return_sequences=k``, bf16 on CUDA, fp32 on CPU. vLLM: one ``LLM.generate`` call per batch with
``SamplingParams(n=k, seed=...)``; it is imported only when chosen, so the project never needs it.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Protocol

from ..curate.io.checks import check_counts
from ..curate.io.errors import OffcurateError

BACKENDS = ("auto", "transformers", "vllm")


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
        if self.temperature < 0 or not 0 < self.top_p <= 1:
            raise OffcurateError("--temperature must be >= 0 and --top-p in (0, 1]")


@dataclass(frozen=True)
class Generation:
    """The model and how to sample it: what ``rollout`` and ``eval --model`` share."""

    model: str
    sampling: SamplingConfig
    batch_size: int = 64
    seed: int = 0
    backend: str = "auto"
    device: str = "auto"
    dtype: str = "auto"

    def __post_init__(self):
        check_counts(("--batch-size", self.batch_size))


@dataclass(frozen=True)
class Completion:
    text: str
    finish_reason: str  # "stop" (a stop token was generated) or "length" (cut at max_new_tokens)
    tokens: int  # generated tokens, the stop token excluded


class Generator(Protocol):
    def generate(self, prompts: list[str], sampling: SamplingConfig, seed: int) -> list[list[Completion]]: ...


def cut_at_stop(ids: list[int], stop_ids: set[int]) -> tuple[list[int], str]:
    """The ids before the first stop id, and why generation ended (pure: unit-tested)."""
    for i, token in enumerate(ids):
        if token in stop_ids:
            return ids[:i], "stop"
    return ids, "length"


def generate_options(sampling: SamplingConfig, pad_id: int, stop_ids: set[int]) -> dict:
    """Keyword arguments of ``model.generate`` for one batch (bench/bench_rollout.py times this call)."""
    greedy = sampling.temperature == 0
    return dict(
        do_sample=not greedy,
        max_new_tokens=sampling.max_new_tokens,
        num_return_sequences=sampling.k,
        pad_token_id=pad_id,
        eos_token_id=sorted(stop_ids),
        use_cache=True,
        **({} if greedy else {"temperature": sampling.temperature, "top_p": sampling.top_p}),
    )


class TransformersGenerator:
    """``model.generate`` over left-padded prompt batches with the KV cache on."""

    def __init__(self, source: str, device: str = "auto", dtype: str = "auto", tokenizer=None):
        """``tokenizer``: the one the caller already loaded for templating (loaded here otherwise)."""
        import torch

        from ..train.model import load_model, load_tokenizer, resolve_device, resolve_precision

        self.device = resolve_device(device)
        if dtype == "auto":
            dtype = "bf16" if self.device.type == "cuda" else "fp32"
        self.tokenizer = tokenizer if tokenizer is not None else load_tokenizer(source)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = load_model(source, resolve_precision(dtype, self.device), self.device, attn="sdpa")
        self.model.eval()
        self.model.config.use_cache = True
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        configured = configured if isinstance(configured, list) else [configured]
        self.stop_ids = {i for i in [self.tokenizer.eos_token_id, *configured] if i is not None}
        self._torch = torch

    def generate(self, prompts: list[str], sampling: SamplingConfig, seed: int) -> list[list[Completion]]:
        torch = self._torch
        batch = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {name: tensor.to(self.device) for name, tensor in batch.items()}
        torch.manual_seed(seed)
        with torch.inference_mode():
            options = generate_options(sampling, self.tokenizer.pad_token_id, self.stop_ids)
            out = self.model.generate(**batch, **options)
        new = out[:, batch["input_ids"].shape[1] :].tolist()
        completions = []
        for ids in new:
            kept, reason = cut_at_stop(ids, self.stop_ids)
            text = self.tokenizer.decode(kept, skip_special_tokens=False)
            completions.append(Completion(text, reason, len(kept)))
        k = sampling.k
        return [completions[i * k : (i + 1) * k] for i in range(len(prompts))]


class VLLMGenerator:
    """vLLM's offline ``LLM``: continuous batching and paged KV cache, much faster on a GPU."""

    def __init__(self, source: str, dtype: str = "auto"):
        from vllm import LLM

        self.llm = LLM(model=source, dtype="bfloat16" if dtype in ("auto", "bf16") else "float32")

    def generate(self, prompts: list[str], sampling: SamplingConfig, seed: int) -> list[list[Completion]]:
        from vllm import SamplingParams

        params = SamplingParams(
            n=sampling.k,
            temperature=sampling.temperature,
            top_p=sampling.top_p if sampling.temperature > 0 else 1.0,
            max_tokens=sampling.max_new_tokens,
            seed=seed,
        )
        results = self.llm.generate(prompts, params, use_tqdm=False)
        return [
            [
                Completion(c.text, "length" if c.finish_reason == "length" else "stop", len(c.token_ids))
                for c in result.outputs
            ]
            for result in results
        ]


def pick_backend(backend: str, cuda: bool) -> str:
    """``auto``: vLLM when it is importable and a GPU is present, else transformers."""
    if backend not in BACKENDS:
        raise OffcurateError(f"--backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    has_vllm = importlib.util.find_spec("vllm") is not None
    if backend == "vllm" and not has_vllm:
        raise OffcurateError("--backend vllm: vLLM is not installed (pip install vllm, or --backend auto)")
    if backend == "auto":
        return "vllm" if has_vllm and cuda else "transformers"
    return backend


def open_generator(
    source: str, backend: str = "auto", device: str = "auto", dtype: str = "auto", tokenizer=None
) -> Generator:
    """The chosen backend with the model loaded (``source``: local folder or Hub id); transformers
    reuses ``tokenizer`` when the caller already has it (vLLM loads its own)."""
    import torch

    cuda = device != "cpu" and torch.cuda.is_available()
    if pick_backend(backend, cuda) == "vllm":
        return VLLMGenerator(source, dtype)
    return TransformersGenerator(source, device, dtype, tokenizer)
