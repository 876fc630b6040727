"""`offcurate train --lora-r`: only adapters train; the adapter loads with peft, --merge with transformers.

python -m pytest -q tests/test_train_lora.py      # 2 ranks vs 1 process: tests/test_train_distributed.py
"""

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import write_voted

from offcurate.curate.io.errors import OffcurateError
from offcurate.train.config import TrainConfig
from offcurate.train.engine import run_training

pytest.importorskip("peft")

OPTIONS = dict(
    model="tiny-random", device="cpu", lr=1e-2, warmup_steps=0, max_steps=3, questions_per_step=2,
    tokens_per_micro_batch=200, max_len=200, save_every=2, keep_last=0, lora_r=4,
)  # fmt: skip
LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("lora")
    voted = write_voted(tmp / "voted")
    run_training(TrainConfig(input=voted, output=tmp / "run", merge=True, **OPTIONS))
    return voted, tmp / "run"


def test_adapter_loads_with_peft_and_merged_model_with_transformers(lora_run):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, run = lora_run
    assert {"adapter_config.json", "adapter_model.safetensors", "tokenizer.json"} <= {
        p.name for p in (run / "final").iterdir()
    }
    adapter = load_file(run / "final" / "adapter_model.safetensors")
    assert len(adapter) == 2 * 2 * len(LINEAR)  # lora_A and lora_B of 7 projections in 2 layers
    assert any(
        not torch.all(w == 0) for k, w in adapter.items() if "lora_B" in k
    )  # B starts at 0: it trained

    ids = torch.tensor([[5, 17, 42, 99, 3, 250, 7]])
    base = AutoModelForCausalLM.from_pretrained(run / "tiny-random")
    peft_model = PeftModel.from_pretrained(base, run / "final").eval()
    merged = AutoModelForCausalLM.from_pretrained(run / "final-merged").eval()
    with torch.no_grad():
        torch.testing.assert_close(merged(ids).logits, peft_model(ids).logits, rtol=1e-5, atol=1e-5)

    start, folded = (
        load_file(run / "tiny-random" / "model.safetensors"),
        load_file(run / "final-merged" / "model.safetensors"),
    )
    assert folded.keys() == start.keys()
    for key in start:  # the base is frozen: only the adapted projections' weights change when merged
        adapted = key.endswith(".weight") and any(f"{name}." in key for name in LINEAR)
        assert torch.equal(folded[key], start[key]) != adapted, key


def test_lora_resume_is_bit_for_bit(lora_run, tmp_path):
    voted, straight = lora_run
    run = tmp_path / "run"
    run_training(TrainConfig(input=voted, output=run, stop_after=2, **OPTIONS))
    run_training(TrainConfig(input=voted, output=run, resume=True, **OPTIONS))
    a = load_file(straight / "final" / "adapter_model.safetensors")
    b = load_file(run / "final" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_lora_checkpoint_holds_the_adapters_not_the_frozen_base(lora_run):
    """A resume reloads the base from the start model, so checkpoints keep only what trains."""
    from torch.distributed.checkpoint import FileSystemReader

    _, run = lora_run
    (checkpoint,) = sorted(run.glob("checkpoint-*"))[-1:]
    saved = FileSystemReader(str(checkpoint / "sharded")).read_metadata().state_dict_metadata
    weights = [k for k in saved if k.startswith("model.")]
    # the tiny model ties its head to the embeddings: DCP keeps that one shared tensor (vocab x hidden)
    assert weights and [k for k in weights if "lora_" not in k] == ["model.model.lm_head.weight"]


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(lora_r=0, merge=True), "--merge folds LoRA adapters in: pass --lora-r"),
        (dict(lora_r=0, lora_alpha=8.0), "--lora-alpha applies to LoRA runs: pass --lora-r"),
        (dict(lora_r=-1), "--lora-r must be >= 0"),
        (dict(lora_r=4, lora_alpha=0.0), "--lora-alpha must be > 0"),
    ],
    ids=["merge_without_lora", "alpha_without_lora", "negative_rank", "zero_alpha"],
)
def test_lora_options_are_checked(tmp_path, overrides, message):
    cfg = TrainConfig(input=tmp_path, output=tmp_path / "run", **{**OPTIONS, **overrides})
    with pytest.raises(OffcurateError, match=message):
        cfg.validate()


def test_unknown_target_module_is_one_line(lora_run, tmp_path):
    voted, _ = lora_run
    cfg = TrainConfig(input=voted, output=tmp_path / "run", **{**OPTIONS, "lora_targets": "nope_proj"})
    with pytest.raises(OffcurateError, match="--lora-targets nope_proj: "):
        run_training(cfg)
    assert not (tmp_path / "run").exists()  # a fresh run that failed before its first step leaves nothing
