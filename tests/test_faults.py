"""Fault injection: kill each stage (SIGKILL, or SIGINT to its process group like ^C) at chosen points of a
run on the embedded sample, then check the invariants (issue 13):

- no folder that looks complete unless it is: the output is either absent or equal to an uninterrupted run's;
- no stray processes: nothing of the killed command's session (workers, resource tracker) outlives it;
- the same command run again (``pipeline`` resumes) gives the uninterrupted output, and leaves no temporary
  sibling behind.

Each command runs as ``offcurate ...`` in a subprocess of its own session, in its own folder with relative
paths (so cards, which record the command line, compare equal). A kill point is a path that exists only
while the stage is in that phase; the test fails if the command finished before reaching it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from offcurate.data import SAMPLE_DIR

pytestmark = pytest.mark.skipif(
    not list(SAMPLE_DIR.glob("*.parquet")) or not Path("/proc/self/stat").exists(),
    reason="needs the embedded sample and /proc (Linux)",
)
OFFCURATE = Path(sys.executable).with_name("offcurate")
COMMAND = [str(OFFCURATE)] if OFFCURATE.exists() else [sys.executable, "-m", "offcurate.cli"]
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def offcurate(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [*COMMAND, *args],
        cwd=cwd,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its session id is its pid: how its workers are found afterwards
    )


def finish(cwd: Path, *args: str) -> None:
    process = offcurate(cwd, *args)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err


def session(sid: int) -> list[str]:
    """Live processes of session ``sid`` as "pid (name)" (zombies are dead: they only wait to be reaped)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()  # state, ppid, pgrp, session, ...
        if int(fields[3]) == sid and fields[0] != "Z":
            found.append(text[: text.rindex(")") + 1])
    return found


def session_pids(sid: int) -> list[int]:
    return [int(entry.split()[0]) for entry in session(sid)]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, minus what differs between two identical runs: the card's command line and the
    manifest's clock times."""
    files = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        if path.name == "README.md":
            data = b"\n".join(line for line in data.splitlines() if not line.startswith(b"Produced by"))
        elif path.name == "download.json":
            record = json.loads(data)
            data = json.dumps({k: v for k, v in record.items() if not k.endswith("_at")}).encode()
        files[str(path.relative_to(folder))] = data
    return files


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """Uninterrupted outputs: demo/{raw,math,voted,stats} and mix."""
    ref = tmp_path_factory.mktemp("reference")
    finish(ref, "pipeline", "-o", "demo", "--workers", "2")
    finish(ref, "sample", "-i", "demo/voted", "-o", "mix")
    return ref


def appears(pattern: str) -> Callable[[Path], bool]:
    return lambda cwd: any(cwd.glob(pattern))


# name: (inputs linked from the reference, command, output, its reference, kill point, signal)
CASES = {
    "filter_sigkill_writing": (
        ["demo/raw"],
        ["filter", "-i", "raw", "-o", "math"],
        "math",
        "demo/math",
        appears(".math.tmp-*"),
        "KILL",
    ),
    "filter_sigint_writing": (
        ["demo/raw"],
        ["filter", "-i", "raw", "-o", "math"],
        "math",
        "demo/math",
        appears(".math.tmp-*"),
        "INT",
    ),
    "vote_sigkill_labeling": (
        ["demo/math"],
        ["vote", "-i", "math", "-o", "voted", "--workers", "2"],
        "voted",
        "demo/voted",
        appears(".voted.tmp-*/questions/*.parquet"),
        "KILL",
    ),
    "vote_sigint_labeling": (
        ["demo/math"],
        ["vote", "-i", "math", "-o", "voted", "--workers", "2"],
        "voted",
        "demo/voted",
        appears(".voted.tmp-*/questions/*.parquet"),
        "INT",
    ),
    "stats_sigkill_writing": (
        ["demo/voted"],
        ["stats", "-i", "voted", "-o", "stats"],
        "stats",
        "demo/stats",
        appears(".stats.tmp-*"),
        "KILL",
    ),
    "sample_sigkill_writing": (
        ["demo/voted"],
        ["sample", "-i", "voted", "-o", "mix"],
        "mix",
        "mix",
        appears(".mix.tmp-*"),
        "KILL",
    ),
    "pipeline_sigkill_after_filter": (
        [],
        ["pipeline", "-o", "demo", "--workers", "2"],
        "demo",
        "demo",
        appears("demo/math/README.md"),
        "KILL",
    ),
    "pipeline_sigint_voting": (
        [],
        ["pipeline", "-o", "demo", "--workers", "2"],
        "demo",
        "demo",
        appears("demo/.voted.tmp-*/spill"),
        "INT",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_killed_stage_leaves_nothing_that_looks_done_and_a_rerun_finishes(reference, tmp_path, case):
    inputs, args, output, expected, kill_point, sig = CASES[case]
    for name in inputs:
        (tmp_path / Path(name).name).symlink_to(reference / name)
    process = offcurate(tmp_path, *args)
    deadline = time.monotonic() + 60
    while process.poll() is None and not kill_point(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.002)
    assert process.poll() is None, (
        f"{case}: the command ended before the kill point ({process.stderr.read()})"
    )
    if sig == "KILL":
        process.kill()
    else:
        os.killpg(process.pid, signal.SIGINT)  # what ^C in a terminal does
    assert process.wait(timeout=60) != 0  # not communicate(): a stray worker would hold stderr open
    try:
        for _ in range(100):  # workers die with their parent; the resource tracker follows them
            if not session(process.pid):
                break
            time.sleep(0.1)
        assert session(process.pid) == []
    finally:
        for pid in session_pids(process.pid):  # leave no stray behind, even when failing
            os.kill(pid, signal.SIGKILL)

    out, want = tmp_path / output, snapshot(reference / expected)
    if case.startswith("pipeline"):  # an unfinished run says so; its finished stages are complete
        if out.exists():
            assert json.loads((out / "pipeline.json").read_text())["complete"] is False
            for stage in ("raw", "math", "voted", "stats"):
                if (out / stage).exists():
                    assert snapshot(out / stage) == snapshot(reference / expected / stage), stage
    else:
        assert not out.exists()

    finish(tmp_path, *args)  # the same command again: no --overwrite, no manual cleanup
    assert snapshot(out) == want
    hidden = [p.name for p in [*tmp_path.iterdir(), *out.iterdir()] if p.name.startswith(".")]
    assert hidden == []


def test_two_writers_of_one_output_one_wins_whole(reference, tmp_path):
    """``vote -i A -o X & vote -i B -o X``: one exits 0, the other 2, and X is the winner's whole output."""
    (tmp_path / "a").symlink_to(reference / "demo/math")
    small = tmp_path / "b"
    small.mkdir()
    shutil.copy(next((reference / "demo/math").glob("train-00000-*.parquet")), small / "x.parquet")
    first = offcurate(tmp_path, "vote", "-i", "a", "-o", "X", "--workers", "1")
    second = offcurate(tmp_path, "vote", "-i", "b", "-o", "X", "--workers", "1")
    codes = {"a": first.wait(timeout=120), "b": second.wait(timeout=120)}
    assert sorted(codes.values()) == [0, 2], codes
    loser = first if codes["a"] else second
    said = loser.stderr.read()
    assert "is writing this output" in said or "exists and is not empty" in said, said
    if codes["a"] == 0:
        assert snapshot(tmp_path / "X") == snapshot(reference / "demo/voted")
    else:  # b started later but won: its output alone, for comparison
        alone = tmp_path / "alone"
        alone.mkdir()
        (alone / "b").symlink_to(small)
        finish(alone, "vote", "-i", "b", "-o", "X", "--workers", "1")
        assert snapshot(tmp_path / "X") == snapshot(alone / "X")
