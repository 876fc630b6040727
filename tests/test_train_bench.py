"""The GPU benchmark script runs end to end on CPU (--smoke), as it would on the GPU machine."""

import importlib

import pytest
from bench_helpers import ROOT, run_as_on_gpu_image

BENCH = ROOT / "bench" / "bench_train.py"


def test_bench_smoke_prints_a_row_per_mode(tmp_path):
    """As on the GPU machine: a plain checkout, offcurate not installed, no polars/datasets/math_verify."""
    out = tmp_path / "BENCHMARKS.md"
    result, env = run_as_on_gpu_image(BENCH, "--smoke", "--append", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert env == {"leaked": [], "offcurate": str(ROOT / "__init__.py")}
    rows = [line for line in out.read_text().splitlines() if line.startswith("| tiny@256")]
    assert [row.split("|")[2].strip() for row in rows] == ["naive", "ours", "ours sel", "lean"]
    assert all("error" not in row and "OOM" not in row for row in rows), rows


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
