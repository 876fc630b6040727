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
    modes = ["naive", "ours", "ours sel", "lean", "fsdp", "fsdp-lean"]
    assert [row.split("|")[2].strip() for row in rows] == modes
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
    assert [r.label for r in groups["7B@16K"]] == ["lean", "lora", "lean compile", "lora compile"]


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
