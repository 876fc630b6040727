"""The installed ``offcurate`` works from outside the checkout and installs no bare ``cli``/``train``."""

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import offcurate

REPO = Path(__file__).resolve().parents[1]


def _run(args, cwd):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("offcurate") is None, reason="offcurate is not installed (pip install -e .)")
def test_console_script_runs_outside_checkout(tmp_path):
    result = _run(["offcurate", "--help"], tmp_path)
    assert result.returncode == 0, result.stderr
    listed = set(re.findall(r"^│ (\w+) ", result.stdout, flags=re.MULTILINE))
    stages = {"download", "filter", "vote", "stats", "pipeline", "rollout", "sample", "train", "eval"}
    assert stages <= listed


def test_package_imports_outside_checkout_without_bare_modules(tmp_path):
    code = (
        "import importlib.util, offcurate, offcurate.cli, offcurate.curate.vote, offcurate.data;"
        "print(offcurate.__version__);"
        "print(importlib.util.find_spec('cli') is None and importlib.util.find_spec('train') is None"
        " and importlib.util.find_spec('curate') is None)"
    )
    result = _run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [offcurate.__version__, "True"]


def test_cli_help_imports_nothing_heavy(tmp_path):
    heavy = ["torch", "transformers", "math_verify", "polars", "pyarrow"]
    code = f"import sys, offcurate.cli; print([m for m in {heavy!r} if m in sys.modules])"
    result = _run([sys.executable, "-c", code], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_wheel_maps_folders_under_offcurate(tmp_path):
    """A real (non-editable) build: everything sits under offcurate/, the sample shards included."""
    result = _run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr
    (wheel,) = tmp_path.glob("offcurate-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if n.endswith(".py")]
    assert code and all(n.startswith("offcurate/") for n in code), code
    assert {
        "offcurate/cli.py",
        "offcurate/curate/vote.py",
        "offcurate/curate/io/shards.py",
        "offcurate/curate/answers/extract.py",
        "offcurate/train/objective.py",
        "offcurate/rollout/stage.py",
        "offcurate/eval/command.py",
    } <= set(names)
    assert not any(n.startswith(("offcurate/tests/", "offcurate/bench/")) for n in names)
    assert any(n.startswith("offcurate/data/sample/") and n.endswith(".parquet") for n in names)
