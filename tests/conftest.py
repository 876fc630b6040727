"""Shared pytest setup: make ``tests/`` importable (helpers such as ``builders``) and keep the Hub away."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch, tmp_path_factory):
    """No test may reach the Hub: offline mode, and a private cache folder."""
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path_factory.mktemp("hf_home")))


@pytest.fixture(scope="session")
def sample_pipeline(tmp_path_factory) -> Path:
    """``offcurate pipeline`` on the embedded sample, run once per session; tests only read it."""
    from offcurate.cli import main
    from offcurate.data import SAMPLE_DIR

    if not list(SAMPLE_DIR.glob("*.parquet")):
        pytest.skip("embedded sample not generated")
    out = tmp_path_factory.mktemp("pipeline") / "demo"
    argv, sys.argv = sys.argv, ["offcurate", "pipeline", "-o", str(out), "--workers", "2"]
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = argv
    assert exit_info.value.code == 0
    return out
