"""`offcurate train` under torchrun: 2 CPU ranks (gloo, FSDP2) against 1 process on the same data and seed.

    python -m pytest -q tests/test_train_distributed.py

The 2-rank runs go through ``python -m torch.distributed.run --standalone -m offcurate train`` in a
subprocess with a timeout (a hung rank fails the test instead of the CI job); the 1-process references run
in-process. Steps are packed into 2 or 3 micro-batches: with 3, one rank also runs a zero-weight padding row.
"""

import shutil
import textwrap

import pytest
import torch
from torchrun_helpers import (
    SAME,
    assert_lora_matches_one_process,
    assert_steps_close,
    assert_weights_close,
    flags,
    native_crash,
    ok,
    one_process,
    rows,
    torchrun,
    weights,
)
from train_helpers import write_voted

from offcurate.train.distributed import assign, padding_batch
from offcurate.train.objective import ObjectiveConfig
from offcurate.train.packing import Sample, build_micro_batch


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    return write_voted(tmp_path_factory.mktemp("data") / "voted")


@pytest.fixture(scope="module")
def sharded_fp32(tmp_path_factory, voted):
    """The 2-rank fp32 run the resume tests continue (checkpoints at steps 2 and 3)."""
    tmp = tmp_path_factory.mktemp("sharded")
    result = ok(torchrun(tmp, voted, tmp / "run"))
    return tmp / "run", result


@pytest.mark.parametrize(
    "costs, world, expected",
    [
        ([5, 4, 3, 2, 1], 2, [[0, 3, 4], [1, 2]]),  # 8 vs 7 tokens; 3 and 2 rows (one padding row)
        ([10, 1, 1, 1], 2, [[0, 3], [1, 2]]),  # the cap, ceil(4/2) = 2 rows, wins over 10 vs 3 tokens
        ([9, 9, 1], 4, [[0], [1], [2], []]),  # more ranks than rows: the last rank pads
        ([3, 3, 3, 3], 1, [[0, 1, 2, 3]]),  # one process: everything, in order
    ],
    ids=["greedy_by_tokens", "capped_count", "more_ranks_than_rows", "one_rank"],
)
def test_assign_balances_tokens_with_at_most_ceil_rows_each(costs, world, expected):
    assert assign(costs, world) == expected


def test_padding_row_carries_no_weight():
    mb = build_micro_batch([Sample([7, 8, 9, 10], 2, 1.5, 0.25)])
    pad = padding_batch(mb)
    assert pad.padding and pad.seq_lengths == [] and not mb.padding
    assert pad.weights.tolist() == [0.0] and pad.advantages.tolist() == [0.0]
    assert pad.input_ids.tolist() == [[7, 7]] and pad.targets.tolist() == [7]


@pytest.mark.parametrize(
    "extra, objective",
    [([], ObjectiveConfig()), (["--beta", "0.05"], ObjectiveConfig(beta=0.05))],
    ids=["fp32", "fp32_beta_reference_model"],
)
def test_two_ranks_equal_one_process(tmp_path, voted, sharded_fp32, extra, objective):
    """Rank 1 built its model on the meta device and got weights and rotary buffers from rank 0: step 1's
    loss and mean token probability (the loaded model's own logits) equal a plain load's. (Measured: with
    rank 1's inv_freq left uninitialised, step 1's mean probability is 1.8e-4 off; the check is 1e-5.)"""
    if extra:
        two, result = tmp_path / "two", ok(torchrun(tmp_path, voted, tmp_path / "two", *extra))
    else:
        two, result = sharded_fp32
    one = tmp_path / "one"
    one_process(voted, one, objective=objective)
    a, b = rows(one), rows(two)
    assert [r["step"] for r in b] == [1, 2, 3]  # rank 0 alone wrote the rows
    assert any(r["micro_batches"] % 2 for r in b)  # an odd count: one rank ran a padding row
    assert_steps_close(a, b)
    # the tied head is written once, as one process writes it (same keys)
    assert_weights_close(weights(one), weights(two), weights(one, "tiny-random"))
    assert result.stderr.count("offcurate train") == 1  # one report, from rank 0


def test_lean_bf16_rounds_each_element_as_one_process(tmp_path, voted):
    """The stochastic rounding is keyed by (seed, parameter, step, element position), not by a per-rank
    RNG, so a rank updating its shard rounds each element as one process does. Made visible where the
    gradients match bit for bit: one micro-batch a step (the other rank adds a padding row's exact zeros)
    and no clipping (the bf16 norm itself is summed in another order: it is logged, it does not act).
    With several micro-batches a step, bf16 gradients are summed in another order than one process
    accumulates them and the runs part (measured: losses within 3e-4, weights apart by 0.14% of the
    distance they moved, as Adam turns a near-zero gradient's rounding into an lr-sized step)."""
    two, one = tmp_path / "two", tmp_path / "one"
    lean = dict(dtype="bf16", tokens_per_micro_batch=1000, max_len=1000, grad_clip=0.0)
    ok(torchrun(tmp_path, voted, two, *flags(**lean)))
    one_process(voted, one, **lean)
    same = [k for k in SAME if k != "micro_batches"]
    a, b = rows(one), rows(two)
    assert [r["micro_batches"] for r in b] == [1, 1, 1]
    assert [{k: r[k] for k in (*same, "loss", "mean_token_prob")} for r in a] == [
        {k: r[k] for k in (*same, "loss", "mean_token_prob")} for r in b
    ]
    wa, wb, start = weights(one), weights(two), weights(one, "tiny-random")
    assert all(wb[k].dtype == torch.bfloat16 and torch.equal(wa[k], wb[k]) for k in wa)
    assert all(not torch.equal(wa[k], start[k]) for k in wa)


def test_bf16_mixed_two_ranks_track_one_process(tmp_path, voted):
    """FSDP's MixedPrecisionPolicy (bf16 weights in compute, fp32 gradient reduction) is not one process's
    autocast (bf16 matmuls around fp32 weights, norms in fp32): close, not equal. Measured on this run:
    losses within 4e-3 relative, gradient norms within 1%, weights apart by 1.6% of the distance moved."""
    two, one = tmp_path / "two", tmp_path / "one"
    ok(torchrun(tmp_path, voted, two, "--dtype", "bf16-mixed"))
    one_process(voted, one, dtype="bf16-mixed")
    for x, y in zip(rows(one), rows(two)):
        assert {k: x[k] for k in SAME} == {k: y[k] for k in SAME}
        assert y["loss"] == pytest.approx(x["loss"], rel=1e-2)
        assert y["grad_norm"] == pytest.approx(x["grad_norm"], rel=2e-2)
    wa, wb, start = weights(one), weights(two), weights(one, "tiny-random")
    assert all(w.dtype == torch.float32 for w in wb.values())  # fp32 master weights, sharded
    apart = sum((wa[k] - wb[k]).abs().sum().item() for k in wa)
    moved = sum((wa[k] - start[k]).abs().sum().item() for k in wa)
    assert apart < 0.05 * moved


def test_resume_two_ranks_bit_exact_and_on_one_rank(tmp_path, voted, sharded_fp32):
    straight, _ = sharded_fp32
    stopped = tmp_path / "stopped"
    ok(torchrun(tmp_path, voted, stopped, "--stop-after", "2"))
    on_one = tmp_path / "on_one"
    shutil.copytree(stopped, on_one)

    ok(torchrun(tmp_path, voted, stopped, "--resume"))  # 2 ranks -> 2 ranks: bit for bit
    assert rows(stopped) == rows(straight)
    a, b = weights(straight), weights(stopped)
    assert all(torch.equal(a[k], b[k]) for k in a)

    one_process(voted, on_one, resume=True)  # 2 ranks -> 1 process: DCP reshards on load
    resumed = rows(on_one)
    assert resumed[:2] == rows(straight)[:2]
    assert resumed[2]["loss"] == pytest.approx(rows(straight)[2]["loss"], rel=1e-5)
    c = weights(on_one)
    assert max((a[k] - c[k]).abs().max().item() for k in a) < 1e-5


def test_lora_two_ranks_equal_one_process(tmp_path, voted):
    """FSDP2 units holding frozen base weights and trainable adapters: the adapters match one process."""
    pytest.importorskip("peft")
    assert_lora_matches_one_process(tmp_path, voted)


def test_hf_folder_equals_the_sharded_state(sharded_fp32):
    """checkpoint-3's Hugging Face weights (gathered on rank 0) are its DCP shards, and final/ is them,
    hard-linked, not gathered a second time."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_model_state_dict
    from transformers import AutoModelForCausalLM

    run, _ = sharded_fp32
    ckpt = run / "checkpoint-000003"
    model = AutoModelForCausalLM.from_pretrained(run / "tiny-random")
    from offcurate.train.model import PackedPolicy, resolve_precision

    state = get_model_state_dict(PackedPolicy(model, resolve_precision("fp32", torch.device("cpu"))))
    with pytest.warns(UserWarning, match="single process"):
        dcp.load({"model": state}, checkpoint_id=ckpt / "sharded")
    hf, final = weights(run, "checkpoint-000003"), weights(run)
    assert all(torch.equal(final[k], hf[k]) for k in hf)
    linked = [(folder / "model.safetensors").stat().st_ino for folder in (ckpt, run / "final")]
    assert linked[0] == linked[1]  # final/ is the checkpoint's file: the model was gathered once
    assert all(torch.equal(state["model." + k], hf[k]) for k in hf)
    loaded = AutoModelForCausalLM.from_pretrained(run / "final").state_dict()
    assert torch.equal(loaded["lm_head.weight"], loaded["model.embed_tokens.weight"])  # still tied


def rank1_script(path, at_call: int, action: str, once: bool = False):
    """A launcher of ``offcurate`` whose rank 1 runs ``action`` (one line of Python) in its ``at_call``-th
    micro-batch; ``once``: in the first launch only (a marker file in the working folder says it ran)."""
    path.write_text(
        textwrap.dedent(
            f"""
            import faulthandler, os, pathlib
            from offcurate.curate.io.errors import OffcurateError
            from offcurate.train import engine
            marker = pathlib.Path("{path.stem}.ran")
            if os.environ["RANK"] == "1" and not ({once} and marker.exists()):
                real, calls = engine.accumulate, []
                def injected(*args, **kwargs):
                    calls.append(1)
                    if len(calls) == {at_call}:
                        marker.touch()
                        {action}
                    return real(*args, **kwargs)
                engine.accumulate = injected
            from offcurate.cli import main
            main()
            """
        )
    )
    return path


def test_failing_rank_takes_the_group_down(tmp_path, voted):
    """Rank 1 raises in its second step while rank 0 waits in a collective: torchrun stops rank 0."""
    script = rank1_script(tmp_path / "fail_rank1.py", 2, 'raise RuntimeError("injected failure on rank 1")')
    result = torchrun(tmp_path, voted, tmp_path / "run", script=script)  # a hang is a TimeoutExpired
    assert result.returncode != 0
    assert "injected failure on rank 1" in result.stderr
    assert "rank      : 1" in result.stderr  # torchrun names the first failure
    assert not list((tmp_path / "run").glob("checkpoint-*"))


def test_an_error_of_one_rank_alone_is_still_one_line(tmp_path, voted):
    """Rank 0 says the errors every rank meets; an error only rank 1 meets (rank 0 waits in a collective)
    is said by rank 1 itself, after a grace period in which rank 0 would have said it."""
    bad_input = 'raise OffcurateError("injected bad input on rank 1")'
    script = rank1_script(tmp_path / "bad_rank1.py", 1, bad_input)
    result = torchrun(tmp_path, voted, tmp_path / "run", script=script)
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == ["error: (rank 1) injected bad input on rank 1"]
    assert "[rank" not in result.stderr  # no rank printed a traceback


def test_bad_input_is_one_line_under_torchrun(tmp_path):
    result = torchrun(tmp_path, tmp_path / "missing", tmp_path / "run")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {tmp_path / 'missing'}: no such file or folder"]
    assert "[rank" not in result.stderr  # no rank printed a traceback


@pytest.mark.parametrize(
    "stderr, found",
    [
        ("Fatal Python error: Segmentation fault\n  File x\n  traceback : Signal 11 (SIGSEGV)", True),
        ("  exitcode  : -7 (pid: 3)\n  traceback : Signal 7 (SIGBUS) received by PID 3", True),
        ("offcurate: error: voted/: no such folder\n  exitcode  : 2 (pid: 3)", False),
        ("  traceback : Signal 15 (SIGTERM) received by PID 3", False),
    ],
    ids=["segfault_with_stack", "bus_error", "known_error", "stopped_by_sigterm"],
)
def test_only_a_native_crash_is_run_again(stderr, found):
    report = native_crash(stderr)
    assert (report is not None) == found
    if found and "Fatal" in stderr:
        assert report.startswith("Fatal Python error: Segmentation fault")


def test_a_native_crash_runs_once_more_from_the_same_start(tmp_path, voted, sharded_fp32):
    script = rank1_script(tmp_path / "crash_once.py", 3, "faulthandler._sigsegv()", once=True)  # in step 2
    with pytest.warns(UserWarning, match="a rank crashed in native code") as caught:
        ok(torchrun(tmp_path, voted, tmp_path / "run", script=script))
    assert "Fatal Python error: Segmentation fault" in str(caught[0].message)
    assert rows(tmp_path / "run") == rows(sharded_fp32[0])  # the rerun started clean: the same run


def test_a_second_native_crash_is_the_result(tmp_path, voted):
    script = tmp_path / "crash_always.py"
    script.write_text('import faulthandler, os\nif os.environ["RANK"] == "1":\n    faulthandler._sigsegv()\n')
    with pytest.warns(UserWarning, match="a rank crashed in native code"):
        result = torchrun(tmp_path, voted, tmp_path / "run", script=script)
    assert result.returncode != 0 and native_crash(result.stderr)
