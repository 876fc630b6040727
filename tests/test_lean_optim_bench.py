"""bench/bench_lean_optim.py runs end to end on CPU (--smoke), as on the GPU machine (no torchao there)."""

import importlib.util

from bench_helpers import ROOT, run_as_on_gpu_image

BENCH = ROOT / "bench" / "bench_lean_optim.py"


def test_smoke_prints_a_row_per_mode(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    result, env = run_as_on_gpu_image(BENCH, "--smoke", "--append", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert env == {"leaked": [], "offcurate": str(ROOT / "__init__.py")}
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| tiny |")]
    assert [r[2].strip() for r in rows] == ["adamw-fp32", "sr-eager", "sr-fused", "torchao-sr"]
    timed = {r[2].strip(): float(r[4].replace(",", "")) for r in rows[:3]}
    assert all(ms > 0 for ms in timed.values())
    assert rows[1][5].strip() == "1.0x"  # the eager write-back is the reference of the ratios
    if importlib.util.find_spec("torchao") is None:  # CI and the GPU image: a row that says why
        assert rows[3][4].strip() == "skipped: torchao not installed"
    else:
        assert float(rows[3][4].replace(",", "")) > 0
