"""RUN/final/ is the last checkpoint's Hugging Face files, linked, not a second gather of the model.

    python -m pytest -q tests/test_train_final.py     # 2 ranks: test_hf_folder_equals_the_sharded_state

One-process runs of 3 steps, checkpoints at steps 2 and 3 (``keep_last`` 1 prunes step 2): the model
state is gathered once per checkpoint (``full_model_state``, which a sharded run makes a collective
gather), and final/ holds exactly the last checkpoint's Hugging Face files as hard links.
"""

import errno
import os
import shutil

import pytest
import torch
from safetensors.torch import load_file
from train_helpers import write_voted

from offcurate.train import checkpoint
from offcurate.train.config import TrainConfig
from offcurate.train.engine import run_training

OPTIONS = dict(
    model="tiny-random", device="cpu", lr=1e-2, warmup_steps=0, max_steps=3, questions_per_step=2,
    tokens_per_micro_batch=200, max_len=200, save_every=2, keep_last=1,
)  # fmt: skip
KINDS = {
    "full_model": ({}, "model.safetensors", {"config.json", "generation_config.json", "tokenizer.json"}),
    "lora_adapter": ({"lora_r": 4}, "adapter_model.safetensors", {"adapter_config.json", "tokenizer.json"}),
}


def _train(tmp_path, monkeypatch, **overrides):
    """A run folder and how often its model state was gathered."""
    gathers = []
    real = checkpoint.full_model_state

    def counting(*args, **kwargs):
        gathers.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(checkpoint, "full_model_state", counting)
    run = tmp_path / "run"
    run_training(TrainConfig(input=write_voted(tmp_path / "voted"), output=run, **OPTIONS, **overrides))
    return run, len(gathers)


@pytest.mark.parametrize("overrides, weights, files", list(KINDS.values()), ids=list(KINDS))
def test_final_links_the_last_checkpoint_without_a_second_gather(
    tmp_path, monkeypatch, overrides, weights, files
):
    if overrides:
        pytest.importorskip("peft")
    run, gathers = _train(tmp_path, monkeypatch, **overrides)
    last = run / "checkpoint-000003"
    assert [p.name for p in checkpoint.list_checkpoints(run)] == [last.name]  # step 2 pruned
    assert gathers == 2  # one per checkpoint (steps 2 and 3), none for final/
    final = run / checkpoint.FINAL
    expected = {p.name for p in last.iterdir()} - {checkpoint.SHARDED, checkpoint.STATE_FILE}
    assert {p.name for p in final.iterdir()} == expected and files | {weights} <= expected
    assert all((final / n).stat().st_ino == (last / n).stat().st_ino for n in expected)  # hard links
    assert not list(run.glob(".final*"))  # no temporary sibling left behind
    saved = load_file(last / weights)
    shutil.rmtree(last)  # the links hold the data: pruning the checkpoint later leaves final/ whole
    assert load_file(final / weights).keys() == saved.keys()
    assert all(torch.equal(load_file(final / weights)[k], saved[k]) for k in saved)
    if overrides:
        from peft import PeftModel
        from transformers import AutoModelForCausalLM

        model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(run / "tiny-random"), final)
        assert model.peft_config["default"].r == 4
    else:
        from transformers import AutoModelForCausalLM

        state = AutoModelForCausalLM.from_pretrained(final).state_dict()
        assert all(torch.equal(state[k], saved[k]) for k in saved)


def test_final_is_copied_where_links_are_refused(tmp_path, monkeypatch):
    """A filesystem without hard links (or final/ on another device): the same files, copied."""

    def refuse(source, target):
        raise OSError(errno.EXDEV, os.strerror(errno.EXDEV), str(target))

    run, _ = _train(tmp_path, monkeypatch)
    last, final = run / "checkpoint-000003", run / "again"
    monkeypatch.setattr(checkpoint.os, "link", refuse)
    checkpoint.publish_hf_folder(last, final)
    names = sorted(p.name for p in final.iterdir())
    assert names == sorted(p.name for p in (run / checkpoint.FINAL).iterdir())
    for name in names:
        assert (final / name).read_bytes() == (last / name).read_bytes()
        assert (final / name).stat().st_ino != (last / name).stat().st_ino


def test_publish_refuses_an_incomplete_checkpoint(tmp_path):
    half = tmp_path / "checkpoint-000001"
    half.mkdir()
    (half / "config.json").write_text("{}")
    with pytest.raises(checkpoint.OffcurateError, match="not a complete checkpoint"):
        checkpoint.publish_hf_folder(half, tmp_path / "final")
    assert not (tmp_path / "final").exists()
