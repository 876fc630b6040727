"""Benchmark of ``offcurate rollout``'s engines: generated tokens/s against each engine's own best use.

    python bench/bench_rollout.py                            # GPU: 0.5B and 1.5B shapes (~10 min on an H100)
    python bench/bench_rollout.py --shapes 7B --append BENCHMARKS.md
    python bench/bench_rollout.py --cpu-cost                 # CPU: what exact per-question sampling costs
    python bench/bench_rollout.py --smoke                    # CPU, tiny shape: checks the script (CI)

Each case builds a random-init Qwen2.5-shaped model (no weights can be fetched on the lent GPU) with a
word-level tokenizer of the model's vocabulary (random 256-word prompts, distinct per question) and times
generation only (engines loaded first) on both sides of a row, in fresh processes:

- vLLM: ``rollout``'s engine path (``add_request``/``step`` with prompts in flight, parts written as
  questions finish, seeds per question) against vLLM's own offline throughput, ``LLM.generate`` on the
  whole prompt set at once with the same prompts, k, lengths and seeds. The ratio is the figure; the
  target is >= 0.9 on one GPU. TP 2 and DP N rows (against N one-GPU ``LLM.generate`` runs' sum) where
  the machine has the GPUs, skipped with the reason otherwise.
- transformers: ``rollout``'s per-question calls (each question's k samples alone: exact whatever the
  cut) against one left-padded ``model.generate`` over every prompt (the fastest plain HF use, not exact
  across cuts). On CPU this is ``--cpu-cost``'s row.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from checkout import use_this_checkout

use_this_checkout()  # the GPU machine has a plain copy of the repository, not an installed package

from bench_train import SHAPES  # noqa: E402

from offcurate.rollout.generate import Generation, Job, SamplingConfig, question_seed  # noqa: E402

PROMPT_WORDS = 256
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CPU_SMALL = dict(hidden_size=256, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=8192, tie_word_embeddings=True)  # fmt: skip


def build_folder(shape: str, folder: Path, dtype: torch.dtype) -> Path:
    """A random-init model of ``shape`` and a word-level tokenizer of its vocabulary, saved to ``folder``."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    from offcurate.train.tiny import CHAT_TEMPLATE

    config = {**SHAPES, "cpu-small": CPU_SMALL}[shape]
    vocab = {token: i for i, token in enumerate(SPECIALS)}
    vocab.update({f"w{i}": i for i in range(len(SPECIALS), config["vocab_size"])})
    core = Tokenizer(models.WordLevel(vocab, unk_token="<|endoftext|>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        additional_special_tokens=SPECIALS[1:2],
    )  # fmt: skip
    tokenizer.chat_template = CHAT_TEMPLATE
    qwen = Qwen2Config(**config, max_position_embeddings=32768, eos_token_id=2, pad_token_id=0)
    torch.manual_seed(0)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = Qwen2ForCausalLM(qwen).to(dtype)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def make_jobs(folder: Path, prompts: int) -> list[Job]:
    """Chat-templated prompts of random words (distinct per question), seeded as rollout seeds them."""
    import random

    from offcurate.curate.io.ids import question_id
    from offcurate.train.data import ChatEncoder
    from offcurate.train.model import load_tokenizer

    encoder = ChatEncoder(load_tokenizer(folder))
    vocab = len(encoder.tokenizer) - len(SPECIALS)
    jobs, rng = [], random.Random(0)
    for n in range(prompts):
        question = " ".join(f"w{len(SPECIALS) + rng.randrange(vocab)}" for _ in range(PROMPT_WORDS))
        prompt = encoder.prompt_text(question)
        ids = encoder.tokenizer(prompt, add_special_tokens=False)["input_ids"]
        qid = question_id(f"{n}: {question}")
        jobs.append(Job(qid, question, prompt, ids, question_seed(0, qid)))
    return jobs


def measure(side: str, folder: Path, prompts: int, k: int, new: int, tp: int, dp: int) -> dict:
    """Generated tokens and seconds of one side of a row (run in a fresh process)."""
    jobs = make_jobs(folder, prompts)
    sampling = SamplingConfig(k=k, max_new_tokens=new)
    cuda = torch.cuda.is_available()
    if side == "vllm-offline":
        from vllm import LLM, SamplingParams

        from offcurate.rollout.vllm_engine import engine_args, sampling_args

        g = Generation(str(folder), sampling, tensor_parallel_size=tp)
        context = max(len(j.prompt_ids) for j in jobs) + new
        llm = LLM(**engine_args(str(folder), g, "bf16", context))
        params = [SamplingParams(**sampling_args(sampling, j.seed, len(j.prompt_ids), context)) for j in jobs]
        start = time.perf_counter()
        out = llm.generate([{"prompt_token_ids": j.prompt_ids} for j in jobs], params, use_tqdm=False)
        seconds = time.perf_counter() - start
        return {"tokens": sum(len(c.token_ids) for r in out for c in r.outputs), "seconds": seconds}
    if side == "hf-batched":
        from offcurate.rollout.generate import TransformersGenerator, generate_options

        gen = TransformersGenerator(str(folder), "auto", "auto", 64)
        tok = gen.tokenizer
        tok.padding_side = "left"
        batch = tok([j.prompt for j in jobs], return_tensors="pt", padding=True, add_special_tokens=False)
        batch = {name: t.to(gen.device) for name, t in batch.items()}
        options = generate_options(sampling, tok.pad_token_id, gen.stop_ids)
        _sync(cuda)
        start = time.perf_counter()
        with torch.inference_mode():
            out = gen.model.generate(**batch, **options)
        _sync(cuda)
        seconds = time.perf_counter() - start
        new_ids = out[:, batch["input_ids"].shape[1] :].tolist()
        from offcurate.rollout.generate import cut_at_stop

        return {"tokens": sum(len(cut_at_stop(ids, gen.stop_ids)[0]) for ids in new_ids), "seconds": seconds}
    return rollout_side(side, folder, jobs, sampling, tp, dp)


def rollout_side(
    side: str, folder: Path, jobs: list[Job], sampling: SamplingConfig, tp: int, dp: int
) -> dict:
    """``rollout``'s own path: plan, parts, engines (in this process or dp workers), the merge."""
    from offcurate.rollout.engines import EngineSpec, deal, load_generator, run_engine, run_engines
    from offcurate.rollout.parts import Parts, run_token
    from offcurate.rollout.plan import Plan

    backend = "vllm" if side == "rollout-vllm" else "transformers"
    cuda = torch.cuda.is_available()
    name = torch.cuda.get_device_name() if cuda else "cpu"
    plan = Plan(backend, "cuda" if cuda else "cpu", name, "bf16" if cuda else "fp32", dp, tp if cuda else 0)
    g = Generation(str(folder), sampling, backend=backend, tensor_parallel_size=tp, data_parallel_size=dp)
    context = max(len(j.prompt_ids) for j in jobs) + sampling.max_new_tokens if backend == "vllm" else None
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "roll"
        parts = Parts(out, {"bench": side}, resume=False, overwrite=True)
        spec = EngineSpec(str(folder), g, plan, context, parts.folder, run_token(), False)
        tokens, start = [0], [time.perf_counter()]

        def ready() -> None:
            start[0] = time.perf_counter()

        if dp == 1:
            generator = load_generator(spec)
            ready()
            run_engine(spec, jobs, tokens.append, generator)
        else:
            run_engines(spec, deal(jobs, dp), tokens.append, ready)
        _sync(cuda)
        seconds = time.perf_counter() - start[0]
        parts.finish(out, overwrite=True, questions=len(jobs))
        total = time.perf_counter() - start[0]
    return {"tokens": sum(tokens), "seconds": seconds, "with_merge": total}


def _sync(cuda: bool) -> None:
    if cuda:
        torch.cuda.synchronize()


def run_side(side: str, *args) -> dict | str:
    """``measure`` here, or for vLLM in a fresh process (each engine gets the GPUs to itself); a failure
    is its last line."""
    if "vllm" not in side:
        result = measure(side, *args)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return result
    args = (side, *args)
    done = subprocess.run(
        [sys.executable, __file__, "--side", *map(str, args)], capture_output=True, text=True
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode or not lines:
        return (done.stderr.strip().splitlines() or ["failed"])[-1][:120]
    return json.loads(lines[-1].removeprefix("RESULT "))


def rows(shape, folder, prompts, k, new, gpus, has_vllm) -> list[tuple[str, dict | str, dict | str]]:
    """(what, ours, baseline) per row of one shape."""
    cases = [("transformers, per question (rollout) vs one padded batch", ("rollout-transformers", 1, 1),
              ("hf-batched", 1, 1))]  # fmt: skip
    if gpus:
        skip = None if has_vllm else "skipped: vLLM is not installed"
        cases.append(
            ("vLLM TP 1: rollout vs LLM.generate", ("rollout-vllm", 1, 1), ("vllm-offline", 1, 1), skip)
        )
        skip = skip or (None if gpus >= 2 else f"skipped: needs 2 GPUs, {gpus} here")
        cases.append(
            ("vLLM TP 2: rollout vs LLM.generate", ("rollout-vllm", 2, 1), ("vllm-offline", 2, 1), skip)
        )
        cases.append((f"vLLM DP {gpus}: rollout vs {gpus} x one-GPU LLM.generate", ("rollout-vllm", 1, gpus),
                      ("vllm-offline", 1, 1), skip))  # fmt: skip
    out = []
    for what, ours, base, *skip in cases:
        if skip and skip[0]:
            out.append((what, skip[0], skip[0]))
            continue
        mine = run_side(ours[0], folder, prompts, k, new, ours[1], ours[2])
        theirs = run_side(base[0], folder, prompts // ours[2] if ours[2] > 1 else prompts, k, new, *base[1:])
        if ours[2] > 1 and isinstance(theirs, dict):  # DP: one GPU's share, as if N ran side by side
            theirs = {**theirs, "tokens": theirs["tokens"] * ours[2]}
        out.append((what, mine, theirs))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--smoke", action="store_true", help="tiny shape on CPU, a few tokens")
    parser.add_argument("--cpu-cost", action="store_true", help="CPU: per-question calls vs one padded batch")
    parser.add_argument("--shapes", default="0.5B,1.5B")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--k", type=int, default=8, help="samples per prompt")
    parser.add_argument("--new-tokens", type=int, default=2048)
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's, one per core)")
    parser.add_argument("--append", type=Path, help="append the Markdown table to this file")
    parser.add_argument("--side", nargs=7, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.side:
        side, folder, prompts, k, new, tp, dp = args.side
        print("RESULT " + json.dumps(measure(side, Path(folder), *map(int, (prompts, k, new, tp, dp)))))
        return

    gpus = 0 if args.smoke or args.cpu_cost else torch.cuda.device_count()
    if args.smoke:
        shapes, prompts, k, new = ["tiny"], 2, 2, 16
    elif args.cpu_cost:
        shapes, prompts, k, new = ["cpu-small"], 16, args.k, 64
    else:
        shapes, prompts, k, new = args.shapes.split(","), args.prompts, args.k, args.new_tokens
    import importlib.util

    has_vllm = importlib.util.find_spec("vllm") is not None
    device = torch.cuda.get_device_name() if gpus else (platform.processor() or "CPU")
    lines = [
        f"Device: {device} x {max(gpus, 1)}; torch {torch.__version__}; {PROMPT_WORDS}-word prompts, "
        f"k = {k}, {'bf16' if gpus else 'fp32'}, T 0.6 / top-p 0.95, seeds per question; generation only "
        f"(models loaded); {torch.get_num_threads()} CPU threads.",
        "",
        "| shape | prompts x k | new tokens | row | ours tokens/s | baseline tokens/s | ratio |",
        "|---|---|---|---|---|---|---|",
    ]
    for shape in shapes:
        with tempfile.TemporaryDirectory() as scratch:
            folder = build_folder(shape, Path(scratch) / shape, torch.bfloat16 if gpus else torch.float32)
            for what, ours, base in rows(shape, folder, prompts, k, new, gpus, has_vllm):
                rate = [r["tokens"] / r["seconds"] if isinstance(r, dict) else r for r in (ours, base)]
                ratio = f"{rate[0] / rate[1]:.2f}" if all(isinstance(r, float) for r in rate) else "–"
                shown = [f"{r:,.0f}" if isinstance(r, float) else r for r in rate]
                lines.append(
                    f"| {shape} | {prompts} x {k} | {new} | {what} | {shown[0]} | {shown[1]} | {ratio} |"
                )
                print(lines[-1], flush=True)
    table = "\n".join(lines)
    print(table)
    if args.append:
        with args.append.open("a") as handle:
            handle.write("\n" + table + "\n")


if __name__ == "__main__":
    main()
