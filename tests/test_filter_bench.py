"""The filter benchmark runs end to end (--smoke, a tiny raw corpus) and writes every row of its table.

Never a timing assertion: the numbers live in BENCHMARKS.md, measured by ``bench/bench_filter.py``.
"""

import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench" / "bench_filter.py"


def _in_git() -> bool:
    found = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, check=False)
    return found.returncode == 0


def test_bench_smoke_writes_the_table(tmp_path):
    out = tmp_path / "BENCHMARKS.md"
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke", "--out", str(tmp_path / "work"), "--markdown", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in out.read_text().splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line for line in lines}
    assert "read+write limit (1 process)" in rows
    for side in ("`filter` after, all cores", "`filter` after, 1 worker"):
        assert "identical" in rows[side] or not _in_git(), rows[side]
    assert any(name.startswith("`filter` before") for name in rows) or not _in_git()
    raw = sorted((tmp_path / "work").glob("raw-*/*.parquet"))
    assert [pq.read_schema(p).names for p in raw[:1]] == [["difficulty", "source", "domain", "conversations"]]
