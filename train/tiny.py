"""A tiny random-init Qwen2 model and a byte-level BPE tokenizer with a chat template, built offline.

    python -m offcurate.train.tiny runs/tiny-model          # write model + tokenizer to a folder
    offcurate train --model tiny-random ...                 # the same, built inside the run folder

Tests and CPU smoke runs need a real causal LM but no weights can be downloaded: the tokenizer is trained in
memory on a few math-flavoured texts (byte-level, so any text encodes without unknown tokens) and wrapped
as a ``PreTrainedTokenizerFast`` with ChatML turns; the model is a 2-layer Qwen2 (hidden 64, 4 heads, 2 KV
heads, tied embeddings, like the small Qwen2.5 models). Everything is seeded, so the folder is reproducible.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast, Qwen2ForCausalLM

TINY_MODEL = "tiny-random"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]
_CORPUS = [
    "What is the sum of all integers from 1 to 100? Let me think step by step.",
    "<think>\nThe sum is n(n+1)/2 = 100*101/2 = 5050. Let me double check: pairs 1+100, 2+99, ...\n</think>",
    "So the answer is $\\boxed{5050}$. Therefore the final answer is \\frac{1}{2} or 0.5 or x = 3.",
    "Find the remainder when 2^{10} is divided by 7. We compute 1024 mod 7 = 2, so the remainder is 2.",
    "Solve for x: 3x + 5 = 20. Subtract 5: 3x = 15, divide by 3: x = 5. Hmm, wait, let me verify.",
    "The probability is \\dfrac{3}{8}; the area is 12\\sqrt{2}; the angle is 45^\\circ; the set is {1, 2}.",
    "Question: how many primes are less than 30? 2, 3, 5, 7, 11, 13, 17, 19, 23, 29 so there are 10.",
]


def build_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained in memory; eos ``<|im_end|>`` ends an assistant turn, pad ``<|endoftext|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_CORPUS * 4, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", model_max_length=1 << 20
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def build_model(
    vocab_size: int, seed: int = 0, hidden: int = 64, layers: int = 2, max_positions: int = 32768
) -> Qwen2ForCausalLM:
    """A random-init Qwen2ForCausalLM in float32 (4 heads of 16, 2 KV heads: grouped-query like Qwen2.5).

    32768 positions, the default ``--max-len`` (which ``offcurate train`` refuses above the model's
    positions); RoPE has no weights, so the number costs nothing.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    config = Qwen2Config(
        vocab_size=vocab_size,
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        tie_word_embeddings=True,
        rope_theta=10000.0,
        use_cache=False,
    )
    torch.manual_seed(seed)
    return Qwen2ForCausalLM(config).float()


BUILT = "tiny-random.json"  # written last: a folder without it is not a finished build


def write_tiny_model(out_dir: Path | str, seed: int = 0) -> Path:
    """Build the tokenizer and model and ``save_pretrained`` both (safetensors) into ``out_dir``.

    Written into a temporary sibling and renamed into place, so a full disk or a kill mid-save never leaves
    a folder that looks like a model (a half-saved one once loaded as "tokenizer has no chat template")."""
    from transformers.utils import logging as hf_logging

    from ..curate.io.output import atomic_output

    hf_logging.disable_progress_bar()  # a one-shard save needs no "Writing model shards" bar
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    model = build_model(len(tokenizer), seed=seed)
    model.config.eos_token_id = tokenizer.eos_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    with atomic_output(out_dir, overwrite=True) as tmp:  # replaces an earlier, incomplete build
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / BUILT).write_text(f'{{"seed": {seed}}}\n')
    return out_dir


def is_complete(folder: Path | str) -> bool:
    """``write_tiny_model`` finished here (a folder from before the atomic save may be half-written)."""
    return (Path(folder) / BUILT).is_file()


def resolve_model(model: str, folder: Path, seed: int = 0) -> str:
    """``model`` itself, or for ``tiny-random`` a tiny model built once into ``folder`` (its path); an
    incomplete folder is built again."""
    if model != TINY_MODEL:
        return model
    if not is_complete(folder):
        write_tiny_model(folder, seed=seed)
    return str(folder)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder to write the model and tokenizer into")
    parser.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    args = parser.parse_args(argv)
    print(write_tiny_model(args.out_dir, seed=args.seed))


if __name__ == "__main__":
    main()
