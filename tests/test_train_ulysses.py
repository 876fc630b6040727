"""Ulysses sequence parallelism (``--sp-size``): row slicing by hand, then CPU ranks against one process.

    python -m pytest -q tests/test_train_ulysses.py

The slicing of a packed row is a pure function, checked on hand-built rows. The runs are ``offcurate
train`` under ``torch.distributed.run`` (gloo): 2 ranks sharing every row, 4 ranks as 2 groups of 2 (with a
zero-weight padding row), and 4 ranks sharing each row 4 ways (the tiny model's 2 KV heads are then
repeated to its 4 query heads before the all-to-all). Each run's per-step loss, gradient norm, mean token
probability and final weights must equal one process's within 1e-5.
"""

import re
import subprocess
import sys

import pytest
import torch
from torchrun_helpers import (
    TIMEOUT,
    assert_lora_matches_one_process,
    assert_steps_close,
    assert_weights_close,
    ok,
    one_process,
    rows,
    torchrun,
    weights,
)
from train_helpers import write_voted

from offcurate.curate.io.errors import OffcurateError
from offcurate.train.model import chunked_logprobs
from offcurate.train.objective import ObjectiveConfig
from offcurate.train.packing import Sample, build_micro_batch
from offcurate.train.ulysses import check_model, slice_micro_batch

# three trajectories (length, prompt length): 28 tokens, 16 response tokens
SPEC = [(13, 4), (9, 3), (6, 2)]


def _row(spec=SPEC):
    ids, samples = 1, []
    for n, prompt in spec:
        samples.append(Sample(list(range(ids, ids + n)), prompt, advantage=float(n), weight=1.0 / n))
        ids += n
    return build_micro_batch(samples)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7], ids=["one", "two", "three_pads_2", "four", "seven"])
def test_slices_put_the_row_back_together(size):
    mb = _row()
    parts = [slice_micro_batch(mb, r, size) for r in range(size)]
    local = -(-28 // size)
    pad = local * size - 28
    assert [p.n_tokens for p in parts] == [local] * size
    ids = torch.cat([p.input_ids for p in parts], dim=1)[0].tolist()
    assert ids == list(range(1, 29)) + [28] * pad  # the padding repeats the last token
    positions = torch.cat([p.position_ids for p in parts], dim=1)[0].tolist()
    assert positions == list(range(13)) + list(range(9)) + list(range(6)) + list(range(pad))
    bounds = [0, 13, 22, 28] + ([28 + pad] if pad else [])
    assert all(p.cu_seqlens.tolist() == bounds for p in parts)  # attention sees the whole row
    assert all(p.max_seqlen == 13 for p in parts)
    pred = torch.cat([p.pred_index + r * local for r, p in enumerate(parts)])
    assert pred.tolist() == mb.pred_index.tolist()  # every target once, in order, on its hidden state
    for field in ("targets", "advantages", "weights"):
        assert torch.cat([getattr(p, field) for p in parts]).tolist() == getattr(mb, field).tolist()
    assert parts[0].seq_lengths == [13, 9, 6] and all(p.seq_lengths == [] for p in parts[1:])


def test_a_slice_of_prompt_tokens_has_no_target():
    """Tokens 0-4 of a 10-token trajectory with an 8-token prompt predict nothing: slice 0 is empty."""
    mb = build_micro_batch([Sample(list(range(10)), 8, 1.0, 0.5)])
    first, second = slice_micro_batch(mb, 0, 2), slice_micro_batch(mb, 1, 2)
    assert first.targets.tolist() == [] and first.weights.tolist() == []
    assert second.pred_index.tolist() == [2, 3] and second.targets.tolist() == [8, 9]


def test_no_target_still_reaches_the_head():
    """A rank whose slice predicts nothing must still give its head a gradient (zeros): FSDP's reduction of
    an untied lm_head pairs up across ranks only if every rank has one."""
    head = torch.nn.Linear(8, 11, bias=False)
    hidden = torch.randn(0, 8, requires_grad=True)
    logp = chunked_logprobs(hidden, head, torch.zeros(0, dtype=torch.long), chunk=4)
    assert logp.shape == (0,)
    logp.sum().backward()
    assert head.weight.grad is not None and not head.weight.grad.any()


@pytest.mark.parametrize(
    "heads, size, fits", [(4, 2, True), (4, 4, True), (4, 3, False), (28, 7, True), (28, 8, False)]
)
def test_sp_size_must_divide_the_heads(heads, size, fits):
    class Config:
        num_attention_heads = heads

    if fits:
        check_model(Config, size)
    else:
        with pytest.raises(OffcurateError, match=f"--sp-size {size} must divide the model's {heads}"):
            check_model(Config, size)


def test_sliding_window_models_are_refused_before_loading():
    class Config:
        num_attention_heads, use_sliding_window = 4, True

    check_model(Config, 1)
    with pytest.raises(OffcurateError, match="sliding-window attention is not supported"):
        check_model(Config, 2)


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    return write_voted(tmp_path_factory.mktemp("data") / "voted")


@pytest.mark.parametrize(
    "nproc, sp, extra, objective",
    [
        (2, 2, ["--beta", "0.05"], ObjectiveConfig(beta=0.05)),
        (4, 2, [], ObjectiveConfig()),
        (4, 4, [], ObjectiveConfig()),
    ],
    ids=["one_group_of_2_with_reference", "two_groups_of_2", "one_group_of_4_kv_repeated"],
)
def test_sequence_parallel_equals_one_process(tmp_path, voted, nproc, sp, extra, objective):
    """The one process runs SDPA over whole rows; the ranks each hold 1/sp of a row and trade heads for
    tokens around attention. Measured: losses within 1e-7 relative, weights within 1.4e-5 (7e-4 of the
    update)."""
    two, one = tmp_path / "sp", tmp_path / "one"
    result = ok(torchrun(tmp_path, voted, two, "--sp-size", str(sp), *extra, nproc=nproc))
    assert re.search(rf"ranks sharing each row \(--sp-size\)\s*│\s*{sp}\s*│", result.stderr)  # summary
    one_process(voted, one, objective=objective)
    a, b = rows(one), rows(two)
    assert len(a) == len(b) == 3
    if nproc // sp > 1:
        assert any(r["micro_batches"] % 2 for r in b)  # a group ran a padding row, sliced too
    assert_steps_close(a, b)
    assert_weights_close(weights(one), weights(two), weights(one, "tiny-random"))


def test_sequence_parallel_lora_equals_one_process(tmp_path, voted):
    """peft's adapters wrap the projections around the same attention function: same adapters."""
    pytest.importorskip("peft")
    assert_lora_matches_one_process(tmp_path, voted, "--sp-size", "2")


def test_sp_size_without_torchrun_is_one_line(tmp_path, voted):
    cmd = [sys.executable, "-m", "offcurate", "train", "-i", str(voted), "-o", str(tmp_path / "run")]
    cmd += ["--model", "tiny-random", "--device", "cpu", "--sp-size", "2"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: --sp-size 2 splits each micro-batch over 2 ranks: launch with torchrun and a multiple of 2 "
        "processes (got 1)"
    )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--sp-size", "2", "--attn", "sdpa"], "--sp-size 2 runs the varlen attention"),
        (["--sp-size", "3"], "a multiple of 3 processes (got 2)"),
    ],
    ids=["with_sdpa", "world_not_a_multiple"],
)
def test_bad_sp_size_under_torchrun_is_one_line(tmp_path, voted, extra, message):
    result = torchrun(tmp_path, voted, tmp_path / "run", *extra)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors and all(message in line for line in errors), result.stderr[-2000:]
    assert "[rank" not in result.stderr  # no rank printed a traceback
    assert not (tmp_path / "run").exists()
