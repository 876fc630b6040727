"""The rollout benchmark runs end to end on CPU (--smoke) as on the GPU image, and writes its rows."""

import pytest
from bench_helpers import ROOT, run_as_on_gpu_image

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = ROOT / "bench" / "bench_rollout.py"


def test_bench_smoke_writes_the_transformers_row(tmp_path):
    """As on the GPU machine: a plain checkout, offcurate not installed, no polars/datasets/math_verify.
    The row times rollout's own engine path (parts, merge) against one padded generate call."""
    out = tmp_path / "BENCHMARKS.md"
    result, env = run_as_on_gpu_image(BENCH, "--smoke", "--append", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    assert env == {"leaked": [], "offcurate": str(ROOT / "__init__.py")}
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| tiny")]
    assert [(r[2].strip(), r[3].strip(), r[4].strip()) for r in rows] == [
        ("2 x 2", "16", "transformers, per question (rollout) vs one padded batch")
    ]
    ours, baseline, ratio = (float(r.replace(",", "")) for r in (rows[0][5], rows[0][6], rows[0][7]))
    assert ours > 0 and baseline > 0 and ratio == pytest.approx(ours / baseline, rel=0.1)
