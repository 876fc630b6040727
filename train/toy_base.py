"""The toy task's base model: a small Qwen2 with a digit-level tokenizer, made by a short SFT warm-up.

    python -m offcurate.train.toy_base runs/toy-data runs/toy-base --seed 0
    from offcurate.train.toy_base import build_toy_base
    build_toy_base(Path("runs/toy-data"), Path("runs/toy-base"), seed=0)   # -> a Hugging Face folder

Why a warm-up: off-policy GRPO's gradient on a right trace is A·π·∇log π, tiny where the student gives a
token almost no probability, so a random model learns next to nothing from it; the method post-trains a
model that already half-solves the task. The warm-up is SFT (the trainer's own step, ``--loss sft``) on
``DATA/warmup/`` (questions disjoint from the teacher set and the benchmarks), mostly on shorter numbers
than the teacher set's, so the base solves its questions only sometimes (a base pass rate strictly between
0 and 1: the blog's Figure 2). It runs until the loss has settled (64 questions x 400 steps, ~2 min on 2
cores): the skill appears abruptly (the loss falls from ~0.7 to ~0.1 somewhere in steps 150-350, at a
step that varies with the seed), and a warm-up stopped near that step gave bases from pass@1 0.08 to 0.6
on the same benchmarks, seed to seed. Settled, the base is steady, and only its share of long numbers
(``ToySpec.warmup_long_share``) decides how often it is right on the longer ones.

The tokenizer is byte-level BPE trained on the warm-up text with every digit its own token (as Qwen's),
ChatML turns (``train/tiny.py``'s template) and ``<|im_end|>`` as eos; generation_config.json names it
too, so ``rollout`` and ``eval --model`` stop at the end of the turn. Everything is seeded: the same data
and seed give the same folder (on the same torch build and thread count).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .tiny import CHAT_TEMPLATE, SPECIAL_TOKENS

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

BUILT = "toy-base.json"  # written last: a folder without it is not a finished build


@dataclass(frozen=True)
class BaseSpec:
    """The base model's shape and its warm-up (the ``toy`` recipe's values)."""

    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    vocab: int = 512
    steps: int = 400  # warm-up optimizer steps: until the loss has settled (module docstring)
    questions_per_step: int = 64
    lr: float = 3e-3
    warmup_steps: int = 10


# Qwen2's pre-tokenizer: transformers (v5) rebuilds it for every qwen2 model, whatever tokenizer.json says,
# so the merges are learnt under the same split (digits single tokens) that loading will apply
QWEN2_SPLIT = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"""
    r"""| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def build_toy_tokenizer(texts: list[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE learnt on ``texts`` under Qwen2's pre-tokenizer (every digit its own token), with
    ChatML turns (``tiny.CHAT_TEMPLATE``), eos ``<|im_end|>`` and pad ``<|endoftext|>``."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_SPLIT), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    chat = ["<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n", "<|im_end|>\n"] * 50
    core.train_from_iterator(list(texts) + chat, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=1 << 20
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _init_model(spec: BaseSpec, tokenizer, seed: int):
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=32768,  # RoPE has no weights: train's default --max-len fits
        tie_word_embeddings=True,
        rope_theta=10000.0,
        use_cache=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config).float()
    model.generation_config = GenerationConfig(
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id
    )
    return model


def warm_up(model, tokenizer, warmup: Path, spec: BaseSpec, seed: int, log=None) -> list[float]:
    """SFT on the warm-up traces with the trainer's own step; returns the loss of every step."""
    import torch

    from .compute import accumulate, micro_batches, optimizer_step
    from .data import ChatEncoder, RowReader, open_voted
    from .model import PackedPolicy, resolve_precision
    from .objective import ObjectiveConfig
    from .optim import build_optimizer, build_scheduler
    from .steps import StepStream

    device = torch.device("cpu")
    precision = resolve_precision("fp32", device)
    index = open_voted(warmup)
    objective = ObjectiveConfig(loss="sft")
    stream = StepStream(
        index, RowReader(index.shards), ChatEncoder(tokenizer), objective, spec.questions_per_step,
        max_len=4096, seed=seed, epochs=None,
    )  # fmt: skip
    policy = PackedPolicy(model, precision, chunk=4096)
    optimizer = build_optimizer(policy, spec.lr, 0.0, device, seed)
    scheduler = build_scheduler(optimizer, spec.warmup_steps, spec.steps)
    model.train()
    losses = []
    for step in range(spec.steps):
        batch = stream.next_step()
        stats = accumulate(policy, micro_batches(batch.samples, 1 << 16), objective, device)
        optimizer_step(policy, optimizer, grad_clip=1.0)
        scheduler.step()
        losses.append(float(stats.loss))
        if log is not None and (step + 1) % 50 == 0:
            log(f"warm-up step {step + 1}/{spec.steps}: loss {losses[-1]:.3f}")
    model.eval()
    return losses


def build_toy_base(
    data: Path,
    out: Path,
    seed: int = 0,
    spec: BaseSpec | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Tokenizer + random Qwen2 + SFT warm-up on ``data/warmup`` -> a Hugging Face folder ``out``.

    Written into a temporary sibling and renamed into place; ``toy-base.json`` (the spec, the seed and
    the warm-up losses) is written last. An existing folder is replaced. The warm-up tokenises with the
    tokenizer as ``AutoTokenizer`` loads it back (transformers rebuilds a qwen2 tokenizer's pipeline), and
    checks that it reads the texts exactly as the one trained here.
    """
    import pyarrow.parquet as pq
    import torch
    from transformers.utils import logging as hf_logging

    from ..curate.io.output import atomic_output
    from .attention import pick_attention, set_attention
    from .model import load_tokenizer

    hf_logging.disable_progress_bar()
    spec = spec or BaseSpec()
    data, out = Path(data), Path(out)
    warmup = data / "warmup"
    table = pq.read_table(warmup, columns=["question", "response"])
    texts = table.column("question").to_pylist() + table.column("response").to_pylist()
    start = time.perf_counter()
    trained = build_toy_tokenizer(texts, spec.vocab)
    model = _init_model(spec, trained, seed)
    with atomic_output(out, overwrite=True) as tmp:  # a folder without toy-base.json is never left as out
        # config first: AutoTokenizer reads its model type
        model.save_pretrained(tmp, safe_serialization=True)
        trained.save_pretrained(tmp)
        tokenizer = load_tokenizer(tmp)
        probe = texts[:: max(1, len(texts) // 64)]
        if [tokenizer.tokenize(t) for t in probe] != [trained.tokenize(t) for t in probe]:
            raise RuntimeError(f"{tmp}: the saved tokenizer does not read the toy texts as the trained one")
        set_attention(model, pick_attention("varlen", torch.device("cpu"), model.config))
        losses = warm_up(model, tokenizer, warmup, spec, seed, log)
        model.config.use_cache = True
        set_attention(model, "sdpa")
        model.save_pretrained(tmp, safe_serialization=True)
        info = {
            "seed": seed,
            "spec": asdict(spec),
            "warmup_loss": losses,
            "seconds": time.perf_counter() - start,
        }
        (tmp / BUILT).write_text(json.dumps(info) + "\n")
    return out


def is_complete(folder: Path | str) -> bool:
    """``build_toy_base`` finished writing ``folder``."""
    return (Path(folder) / BUILT).is_file()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m offcurate.train.toy_base", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("data", type=Path, help="a toy data folder (python -m offcurate.data.toy)")
    parser.add_argument("out", type=Path, help="folder to write the model and tokenizer into")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=BaseSpec.steps, help="warm-up optimizer steps")
    args = parser.parse_args(argv)
    spec = BaseSpec(steps=args.steps)
    path = build_toy_base(args.data, args.out, args.seed, spec, log=print)
    info = json.loads((path / BUILT).read_text())
    first, last = info["warmup_loss"][0], info["warmup_loss"][-1]
    print(f"{path}: warm-up loss {first:.3f} -> {last:.3f} in {info['seconds']:.0f} s")


if __name__ == "__main__":
    main()
