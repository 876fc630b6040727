"""The vLLM backend: vLLM's offline engine kept full, finished questions handed back as they finish.

    gen = VLLMGenerator("Qwen/Qwen2.5-7B-Instruct", generation, dtype="bf16", max_model_len=33792)
    for index, completions in gen.stream(jobs, sampling): ...

vLLM is imported only here, only when chosen (the project never needs it). The engine is fed through
``LLMEngine.add_request``/``step`` (what ``LLM.generate`` does inside): up to ``--prompts-in-flight``
prompts (4096) sit in its queue at once, so continuous batching never starves, and each question comes
back the moment its k samples are done, so the caller writes it while the rest run (``--resume`` loses
only what was in flight) and memory holds the in-flight prompts only, never the whole workload.

One request per question, ``n = k``, prompt token ids (the chat template is applied by the caller, as
for training), ``seed`` = the question's seed (vLLM gives sample i seed + i); prefix caching is on, so a
prompt's KV blocks are computed once for its k samples. ``max_tokens`` is capped so prompt + sample fits
``--max-model-len``; a sample cut there or at ``--max-new-tokens`` is ``length``.

The argument builders are pure functions (tests/test_rollout_engines.py); the GPU rows of
bench/bench_rollout.py run the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from .generate import Completion, Generation, Job, SamplingConfig

PROMPTS_IN_FLIGHT = 4096
GPU_MEMORY_UTILIZATION = 0.9
_DTYPES = {"bf16": "bfloat16", "fp32": "float32"}


def fitted_max_model_len(
    longest_prompt: int, max_new_tokens: int, positions: int | None, given: int | None
) -> int:
    """The engine's context: ``--max-model-len`` when given; else room for the longest prompt plus
    ``--max-new-tokens`` (vLLM's default, the model's positions, may cut long samples or waste KV cache),
    at most the model's ``max_position_embeddings``."""
    if given is not None:
        return given
    need = longest_prompt + max_new_tokens
    return min(need, positions) if positions else need


def engine_args(source: str, g: Generation, dtype: str, max_model_len: int) -> dict:
    """Keyword arguments of ``vllm.LLM`` for one engine (its GPUs are the visible ones)."""
    return dict(
        model=source,
        dtype=_DTYPES[dtype],
        tensor_parallel_size=g.tensor_parallel_size,
        max_model_len=max_model_len,
        gpu_memory_utilization=g.gpu_memory_utilization or GPU_MEMORY_UTILIZATION,
        enable_prefix_caching=True,
        seed=g.seed,
        disable_log_stats=True,
    )


def sampling_args(sampling: SamplingConfig, seed: int, prompt_tokens: int, max_model_len: int) -> dict:
    """Keyword arguments of ``vllm.SamplingParams`` for one question's k samples."""
    greedy = sampling.temperature == 0
    return dict(
        n=sampling.k,
        temperature=sampling.temperature,
        top_p=1.0 if greedy else sampling.top_p,
        max_tokens=min(sampling.max_new_tokens, max_model_len - prompt_tokens),
        seed=seed,
    )


def drive(engine, requests: Iterable[tuple[str, dict, object]], in_flight: int) -> Iterator:
    """Keep up to ``in_flight`` requests in ``engine`` (``add_request``/``step``, vLLM's LLMEngine) and
    yield each finished request's output as it finishes, whatever the order."""
    pending = iter(requests)
    running, exhausted = 0, False
    while True:
        while not exhausted and running < in_flight:
            request = next(pending, None)
            if request is None:
                exhausted = True
                break
            engine.add_request(*request)
            running += 1
        if running == 0:
            return
        for output in engine.step():
            if output.finished:
                running -= 1
                yield output


def completions_of(output) -> list[Completion]:
    """A finished ``RequestOutput`` as our completions (the stop token is not counted, as in transformers)."""
    return [
        Completion(c.text, "length" if c.finish_reason == "length" else "stop",
                   len(c.token_ids) - (c.finish_reason != "length" and len(c.token_ids) > 0))
        for c in output.outputs
    ]  # fmt: skip


class VLLMGenerator:
    """One vLLM engine over the visible GPUs (``--tensor-parallel-size`` of them)."""

    def __init__(self, source: str, g: Generation, dtype: str, max_model_len: int):
        from vllm import LLM

        self.llm = LLM(**engine_args(source, g, dtype, max_model_len))
        self.max_model_len = max_model_len
        self.in_flight = g.prompts_in_flight or PROMPTS_IN_FLIGHT

    def stream(self, jobs: Sequence[Job], sampling: SamplingConfig) -> Iterator[tuple[int, list[Completion]]]:
        from vllm import SamplingParams

        try:  # only the final output of each request (otherwise every step returns partial ones)
            from vllm.sampling_params import RequestOutputKind

            final_only = {"output_kind": RequestOutputKind.FINAL_ONLY}
        except ImportError:
            final_only = {}

        def requests():
            for index, job in enumerate(jobs):
                args = sampling_args(sampling, job.seed, len(job.prompt_ids), self.max_model_len)
                yield str(index), {"prompt_token_ids": job.prompt_ids}, SamplingParams(**args, **final_only)

        for output in drive(self.llm.llm_engine, requests(), self.in_flight):
            yield int(output.request_id), completions_of(output)
