"""The toy base model's folder: what ``train``, ``rollout`` and ``eval --model`` load from it.

    python -m pytest tests/test_toy_base.py -q

A small spec and a few warm-up steps (the toy recipe runs 500): the checks are about the folder, the
tokenizer as transformers loads it back, the end-of-turn token, and that the warm-up is the SFT loss
going down, not about skill.
"""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from offcurate.data.toy import ToySpec, write_toy_data  # noqa: E402
from offcurate.train.model import load_model, load_tokenizer, resolve_precision  # noqa: E402
from offcurate.train.toy_base import BUILT, BaseSpec, build_toy_base, is_complete  # noqa: E402

SPEC = BaseSpec(
    hidden=32,
    layers=1,
    heads=2,
    kv_heads=1,
    intermediate=64,
    steps=12,
    questions_per_step=16,
    warmup_steps=2,
    lr=1e-2,
)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy-base")
    write_toy_data(
        root / "data", seed=0, spec=ToySpec(train_per_skill=4, warmup_per_skill=100, bench_per_skill=2)
    )
    return build_toy_base(root / "data", root / "base", seed=0, spec=SPEC)


def test_folder_loads_as_the_trainer_loads_it(base):
    assert is_complete(base)
    model = load_model(base, resolve_precision("fp32", torch.device("cpu")), torch.device("cpu"))
    assert model.config.hidden_size == 32 and model.config.num_hidden_layers == 1
    tokenizer = load_tokenizer(base)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert tokenizer.eos_token == "<|im_end|>"
    assert model.generation_config.eos_token_id == eos  # rollout and eval stop at the end of the turn


def test_tokenizer_digits_and_chat_template(base):
    tokenizer = load_tokenizer(base)
    assert tokenizer.tokenize("53146") == list("53146")  # every digit its own token
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the sum of the digits of 53146?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert (
        prompt
        == "<|im_start|>user\nWhat is the sum of the digits of 53146?<|im_end|>\n<|im_start|>assistant\n"
    )
    text = "<think>\n5+3=8\n</think>\n\nTotal: \\boxed{8}."
    assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text


def test_warm_up_lowers_the_sft_loss(base):
    info = json.loads((base / BUILT).read_text())
    losses = info["warmup_loss"]
    assert len(losses) == SPEC.steps and info["seed"] == 0
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


def test_same_seed_same_weights(base, tmp_path):
    again = build_toy_base(base.parent / "data", tmp_path / "again", seed=0, spec=SPEC)
    a, b = (
        load_model(p, resolve_precision("fp32", torch.device("cpu")), torch.device("cpu"))
        for p in (base, again)
    )
    for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        torch.testing.assert_close(x, y, msg=name)
