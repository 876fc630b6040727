"""The GPU rollout benchmark runs end to end on CPU (--smoke) and writes one row per backend it found."""

import pytest
from bench_helpers import ROOT, run_as_on_gpu_image

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = ROOT / "bench" / "bench_rollout.py"


def test_bench_smoke_writes_a_transformers_row(tmp_path):
    """As on the GPU machine: a plain checkout, offcurate not installed, no polars/datasets/math_verify."""
    out = tmp_path / "BENCHMARKS.md"
    result, env = run_as_on_gpu_image(BENCH, "--smoke", "--append", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert env == {"leaked": [], "offcurate": str(ROOT / "__init__.py")}
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| tiny")]
    assert [(r[2].strip(), r[3].strip(), r[4].strip()) for r in rows] == [("2 x 2", "16", "transformers")]
    assert float(rows[0][5].replace(",", "")) > 0  # tokens/s measured, every sequence to full length
