"""The GPU benchmark script runs end to end on CPU (--smoke), as it would on the GPU machine."""

import importlib

import pytest
import torch
from bench_helpers import ROOT, run_as_on_gpu_image

from offcurate.train.tiny import build_model

BENCH = ROOT / "bench" / "bench_train.py"


def test_bench_smoke_prints_a_row_per_mode(tmp_path):
    """As on the GPU machine: a plain checkout, offcurate not installed, no polars/datasets/math_verify."""
    out = tmp_path / "BENCHMARKS.md"
    result, env = run_as_on_gpu_image(BENCH, "--smoke", "--append", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert env == {"leaked": [], "offcurate": str(ROOT / "__init__.py")}
    rows = [line for line in out.read_text().splitlines() if line.startswith("| tiny@256")]
    modes = ["naive", "ours", "ours sel", "lean", "fsdp", "fsdp-lean", "fsdp x2", "fsdp x2 sp2"]
    assert [row.split("|")[2].strip() for row in rows] == modes
    ranked, shared = ([cell.strip() for cell in row.split("|")] for row in rows[-2:])
    assert ranked[3] == "2048" and float(ranked[4].replace(",", "")) > 0  # 2 ranks under torchrun, 4x256 each
    assert shared[3] == "1024" and float(shared[4].replace(",", "")) > 0  # both ranks on the same 4x256
    assert all("error" not in row and "OOM" not in row for row in rows), rows
    assert any(line.startswith("naive = ") for line in out.read_text().splitlines())  # which naive step


@pytest.fixture()
def bench(monkeypatch):
    """bench/bench_train.py imported as a module (bench/ on the path, as when it runs as a script)."""
    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    return importlib.import_module("bench_train")


def test_compile_variant_for_every_non_naive_run(bench):
    groups = bench.with_compile(bench.cases())
    for name, runs in groups.items():
        plain = [r.label for r in runs if r.mode != "naive" and not r.compile]
        compiled = [r.label for r in runs if r.compile]
        assert compiled == [f"{label} compile" for label in plain], name
    assert [r.label for r in groups["7B@16K"]] == [
        "lean", "lora", "fsdp x8", "lean compile", "lora compile", "fsdp x8 compile",
    ]  # fmt: skip


def test_rows_of_several_gpus_sum_tokens_and_give_mfu_per_gpu(bench):
    """Rank 0's row from every rank's timing: tokens/s over the slowest rank's seconds, MFU per GPU."""
    run = bench.Run("tiny", "fsdp", 256, per_step=2, gpus=2)
    n, layers, hidden = 1000, bench.SHAPES["tiny"]["num_hidden_layers"], bench.SHAPES["tiny"]["hidden_size"]
    timings = [
        {"seconds": 0.5, "lengths": [256, 256], "n_params": n, "n_frozen": 0, "peak_gib": 3.0},
        {"seconds": 0.4, "lengths": [256], "n_params": n, "n_frozen": 0, "peak_gib": 5.0},
    ]
    row = bench.row(run, timings, peak=1e9)
    assert row["tokens_per_s"] == 768 / 0.5 and row["peak_gib"] == 5.0
    flops = 6.0 * n * 768 + 3 * 6.0 * layers * 256 * 256 * hidden
    assert row["mfu"] == pytest.approx(flops / 0.5 / 2 / 1e9)
    assert bench.row(run, [timings[0]], peak=None)["mfu"] is None


def test_rows_for_more_gpus_than_the_machine_has_are_skipped(bench):
    have = torch.cuda.device_count()
    need = max(2, have + 1)
    run = bench.Run("tiny", "fsdp", 256, gpus=need)
    bench.launch(run, None, steps=1, warmup=0, smoke=False, timeout=60)
    assert run.result == {"error": f"skipped (needs {need} GPUs, {have} here)"}
    line = f"| c | fsdp x{need} | {256 * need} | skipped (needs {need} GPUs, {have} here) | | | |  |"
    assert bench.table({"c": [run]})[-1] == line


def test_a_failing_rank_is_one_line_in_its_row(bench):
    """A rank that raises exits at once; torchrun stops the other: the row says why, nothing hangs."""
    run = bench.Run("no-such-shape", "fsdp", 64, gpus=2)
    bench.launch(run, None, steps=1, warmup=0, smoke=True, timeout=120)
    assert run.result == {"error": "KeyError: 'no-such-shape'"}


@pytest.mark.parametrize("mode", ["naive", "ours", "lean", "lora"])
def test_only_sharded_modes_run_on_several_gpus(bench, mode):
    with pytest.raises(ValueError, match="only the fsdp modes"):
        bench.Run("tiny", mode, 256, gpus=2)


@pytest.mark.parametrize("gpus, sp", [(1, 2), (6, 4), (2, 3)], ids=["one_gpu", "not_a_multiple", "too_few"])
def test_sequence_parallel_rows_need_a_multiple_of_sp_gpus(bench, gpus, sp):
    with pytest.raises(ValueError, match=f"--sp-size {sp} needs a multiple of {sp} GPUs"):
        bench.Run("tiny", "fsdp", 256, gpus=gpus, sp=sp)


def _fake_anchor(folder, name):
    path = folder / "shared" / "bench" / "train_step_anchor.py"
    path.parent.mkdir(parents=True)
    path.write_text(f"def step(model, ids, adv, mode, chunk=2048):\n    return {name!r}, mode\n")


ANCHOR_PLACES = {
    "inside_checkout_first": (["checkout", "parent"], "checkout", "step() of ./shared/"),
    "beside_checkout": (["parent"], "parent", "step() of ../shared/"),
    "missing_falls_back_to_copy": ([], None, "copy of the anchor's step() (shared/bench/ not found)"),
}


@pytest.mark.parametrize("present, picked, source", list(ANCHOR_PLACES.values()), ids=list(ANCHOR_PLACES))
def test_load_anchor_prefers_the_copy_in_the_checkout(bench, tmp_path, present, picked, source):
    checkout = tmp_path / "parent" / "checkout"
    checkout.mkdir(parents=True)
    for name in present:
        _fake_anchor(checkout if name == "checkout" else checkout.parent, name)
    step, where = bench.load_anchor(checkout)
    assert source in where
    if picked is None:
        assert step is bench.naive_step
    else:
        assert step(None, None, None) == (picked, "naive")


def test_fallback_copy_matches_the_anchor(bench):
    """bench_train.py's naive_step must stay the anchor's step(mode="naive"): same loss, same gradients."""
    anchor, where = bench.load_anchor()
    if anchor is bench.naive_step:
        pytest.skip("shared/bench/train_step_anchor.py not found beside or inside the checkout")
    grads = []
    for step in (anchor, bench.naive_step):
        model = build_model(97, seed=0)
        torch.manual_seed(1)
        ids, adv = torch.randint(0, 97, (1, 24)), torch.randn(1, 23)
        loss = step(model, ids, adv)
        grads.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    (loss_a, grads_a), (loss_b, grads_b) = grads
    assert torch.equal(loss_a, loss_b) and loss_a != 0
    assert all(torch.equal(a, b) for a, b in zip(grads_a, grads_b))
