"""The GPU rollout benchmark runs end to end on CPU (--smoke) and writes one row per backend it found."""

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_rollout.py"


def test_bench_smoke_writes_a_transformers_row(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--append", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [line.split("|") for line in out.read_text().splitlines() if line.startswith("| tiny")]
    assert [(r[2].strip(), r[3].strip(), r[4].strip()) for r in rows] == [("2 x 2", "16", "transformers")]
    assert float(rows[0][5].replace(",", "")) > 0  # tokens/s measured, every sequence to full length
