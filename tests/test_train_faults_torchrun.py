"""`offcurate train` under torchrun (2 CPU ranks): an error only one rank meets is said once, on one line,
and a full disk while checkpointing leaves nothing half-written (issue 22).

    python -m pytest -q tests/test_train_faults_torchrun.py

Before, the commonest mistakes (output exists, lock held, a changed option on --resume) are met by rank 0
alone; rank 1 then waited in a collective until rank 0 left and printed ~90 lines of gloo's "Connection
closed by peer" traceback around the one line that mattered. Faults are injected per rank by a launcher
script (as tests/test_train_distributed.py does); ``test_a_real_full_disk_two_ranks`` uses a tmpfs where
the tests may mount one.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import textwrap

import pytest
from torchrun_helpers import ok, one_process, torchrun
from train_helpers import write_voted


@pytest.fixture(scope="module")
def voted(tmp_path_factory):
    return write_voted(tmp_path_factory.mktemp("data") / "voted")


def said_once(result: subprocess.CompletedProcess, message: str) -> str:
    """One ``error:`` line holding ``message``, and no rank's traceback (torchrun's own report may follow)."""
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-4000:]
    assert "Connection closed" not in result.stderr, result.stderr[-4000:]
    assert "cli.py" not in result.stderr, result.stderr[-4000:]  # a rank's traceback runs through cli.main
    assert "exitcode  : 2" in result.stderr  # the rank that said it exited 2
    return errors[0]


def test_output_exists_is_said_once(tmp_path, voted):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "notes.txt").write_text("mine")
    result = torchrun(tmp_path, voted, tmp_path / "run")
    said_once(result, "output folder exists and is not empty (pass --overwrite or --resume)")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["notes.txt"]


def test_lock_held_is_said_once(tmp_path, voted):
    lock = os.open(tmp_path / ".run.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.write(lock, b"12345\n")
        result = torchrun(tmp_path, voted, tmp_path / "run")
    finally:
        os.close(lock)
    said_once(result, "another offcurate process (pid 12345) is writing this output")
    assert not (tmp_path / "run").exists()


def test_changed_option_on_resume_is_said_once(tmp_path, voted):
    run = tmp_path / "run"
    one_process(voted, run, stop_after=2)
    config = (run / "config.json").read_bytes()
    result = torchrun(tmp_path, voted, run, "--resume", "--lr", "0.5")
    said_once(result, "cannot resume with changed options: --lr 0.01 -> 0.5")
    assert (run / "config.json").read_bytes() == config


NO_SPACE = """
import errno, os
from pathlib import Path

def no_space(path):
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
"""

RANK0_HF_WRITE = (
    NO_SPACE
    + """
if os.environ["RANK"] == "0":  # rank 0 alone writes the Hugging Face folder; rank 1 waits for it
    from offcurate.train import checkpoint

    def half_then_full(folder, *args, **kwargs):
        (Path(folder) / "model.safetensors").write_bytes(b"\\0" * 1000)
        raise no_space(Path(folder) / "model.safetensors")

    checkpoint._write_hf = half_then_full
"""
)

RANK1_SHARD_WRITE = (
    NO_SPACE
    + """
if os.environ["RANK"] == "1":  # every rank writes its own DCP shard
    from torch.distributed.checkpoint.filesystem import FileSystemWriter

    def full(self, plan, planner):
        raise no_space(Path(self.path) / "__1_0.distcp")

    FileSystemWriter.write_data = full
"""
)


@pytest.mark.parametrize(
    "fault", [RANK0_HF_WRITE, RANK1_SHARD_WRITE], ids=["rank0_hf_folder", "rank1_dcp_shard"]
)
def test_a_full_disk_at_a_checkpoint_is_said_once_and_leaves_nothing(tmp_path, voted, fault):
    script = tmp_path / "full_disk.py"
    script.write_text(textwrap.dedent(fault) + "\nfrom offcurate.cli import main\nmain()\n")
    run = tmp_path / "run"
    result = torchrun(tmp_path, voted, run, script=script)
    said_once(result, "No space left on device; checkpoint-000002 was not written")
    assert not run.exists()  # a fresh run without a checkpoint leaves nothing (no .checkpoint-N.tmp)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    if fault is RANK0_HF_WRITE:  # (once: a 2-rank run costs ~15 s)
        ok(torchrun(tmp_path, voted, run))  # space freed: the same command
        assert (run / "final" / "model.safetensors").exists()


def test_a_real_full_disk_two_ranks(tmp_path, voted):
    """A 2 MB tmpfs: tiny-random fits, the first checkpoint (two DCP shards and the HF folder) does not."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mount = ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)]
    if os.geteuid() != 0 or subprocess.run(mount, capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        result = torchrun(tmp_path, voted, disk / "run")
        said_once(result, "No space left on device")
        assert list(disk.iterdir()) == []
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)
