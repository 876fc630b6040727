"""GPU benchmark of ``offcurate rollout``'s generation: generated tokens/s for Qwen2.5-shaped models.

    python bench/bench_rollout.py                               # 0.5B and 1.5B shapes (H100/H200, ~5 min)
    python bench/bench_rollout.py --append BENCHMARKS.md        # also append the table as Markdown
    python bench/bench_rollout.py --smoke                       # CPU, tiny shape: checks the script

Random-init models (no weights can be fetched on the lent GPU), bf16, SDPA. Each case times the call the
transformers backend makes (``model.generate`` with ``offcurate.rollout.generate.generate_options``: KV
cache, sampling at temperature 0.6 / top-p 0.95, k samples per prompt) on random prompts; the stop set is
empty so every sequence runs to ``--new-tokens`` and tokens/s counts exactly batch x new tokens. When
vLLM is importable, the same shape is also run through ``LLM.generate`` (prompt token ids, n = k).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import torch
from checkout import use_this_checkout

use_this_checkout()  # the GPU machine has a plain copy of the repository, not an installed package

from bench_train import SHAPES  # noqa: E402

from offcurate.rollout.generate import SamplingConfig, generate_options  # noqa: E402

PROMPT = 256


def build(shape: str, device: torch.device, dtype: torch.dtype):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(**SHAPES[shape], max_position_embeddings=32768, attn_implementation="sdpa")
    with torch.device(device):
        model = Qwen2ForCausalLM(config).to(dtype)
    model.eval()
    model.generation_config.eos_token_id = None
    return model


def time_transformers(model, prompts: int, k: int, new_tokens: int, device: torch.device) -> dict:
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (prompts, PROMPT), device=device)
    mask = torch.ones_like(ids)
    options = generate_options(SamplingConfig(k=k, max_new_tokens=new_tokens), 0, set())
    options["min_new_tokens"] = new_tokens  # random weights rarely stop; this makes sure none does
    with torch.inference_mode():
        warm = {**options, "max_new_tokens": 4, "min_new_tokens": 4}
        model.generate(input_ids=ids[:1], attention_mask=mask[:1], **warm)
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        out = model.generate(input_ids=ids, attention_mask=mask, **options)
        if device.type == "cuda":
            torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    generated = (out.shape[1] - PROMPT) * out.shape[0]
    peak = f"{torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if device.type == "cuda" else "–"
    return {"seconds": seconds, "tokens": generated, "peak": peak}


def time_vllm(model, prompts: int, k: int, new_tokens: int) -> dict | None:
    try:
        from vllm import LLM, SamplingParams
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        llm = LLM(model=folder, skip_tokenizer_init=True, dtype="bfloat16")
        params = SamplingParams(
            n=k, temperature=0.6, top_p=0.95, max_tokens=new_tokens, min_tokens=new_tokens
        )
        batch = [{"prompt_token_ids": torch.randint(0, 1000, (PROMPT,)).tolist()} for _ in range(prompts)]
        start = time.perf_counter()
        results = llm.generate(batch, params, use_tqdm=False)
        seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for r in results for c in r.outputs)
    return {"seconds": seconds, "tokens": tokens, "peak": "–"}  # vLLM reserves memory up front


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, a few tokens")
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument("--new-tokens", type=int, default=2048)
    parser.add_argument("--append", type=Path, help="append the Markdown table to this file")
    args = parser.parse_args()

    device = torch.device("cpu" if args.smoke or not torch.cuda.is_available() else "cuda")
    dtype = torch.float32 if device.type == "cpu" else torch.bfloat16
    sizes = [(shape, prompts, args.new_tokens) for shape in ("0.5B", "1.5B") for prompts in (8, 32)]
    cases = [("tiny", 2, 16)] if args.smoke else sizes
    k = 2 if args.smoke else args.k
    gpu = torch.cuda.get_device_name() if device.type == "cuda" else platform.processor() or "CPU"
    lines = [
        f"Device: {gpu}; torch {torch.__version__}; prompt {PROMPT} tokens, k = {k}, {dtype}, SDPA, sampling "
        "at T 0.6 / top-p 0.95, every sequence generated to full length.",
        "",
        "| shape | prompts x k | new tokens | backend | generated tokens/s | wall | peak GPU memory |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape, prompts, new_tokens in cases:
        model = build(shape, device, dtype)
        runs = [("transformers", time_transformers(model, prompts, k, new_tokens, device))]
        if device.type == "cuda":
            runs.append(("vLLM", time_vllm(model, prompts, k, new_tokens)))
        for backend, r in runs:
            if r is None:
                lines.append(
                    f"| {shape} | {prompts} x {k} | {new_tokens} | {backend} | not installed | – | – |"
                )
                continue
            rate = r["tokens"] / r["seconds"]
            lines.append(
                f"| {shape} | {prompts} x {k} | {new_tokens} | {backend} | {rate:,.0f} | "
                f"{r['seconds']:.1f} s | {r['peak']} |"
            )
            print(lines[-1], flush=True)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    table = "\n".join(lines)
    print(table)
    if args.append:
        with args.append.open("a") as handle:
            handle.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
