"""Run a bench script on N processes under torchrun, one line back when it fails; leave each rank cleanly.

    from multi_rank import exit_rank, on_ranks
    error = on_ranks(Path(__file__), 8, ["--worker", ...], timeout=1200)   # None, or one line saying why
    exit_rank(main)                                                         # the script's __main__ as a rank

Why each piece: ``python -m torch.distributed.run --standalone`` (not the ``torchrun`` script, which a plain
checkout's PATH may lack) picks a free port, so rows never collide; it runs in a session of its own, so a
timeout kills torchrun and every rank at once, none left waiting in a collective. A rank leaves with
``os._exit`` once its output is flushed, as ``offcurate train``'s ranks do (cli.main): gloo's threads can
abort a normal interpreter exit (pytorch PR 179291), and a failing rank exits 1 at once, so torchrun stops
the others. No torch import here: the caller's process stays as it was.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def on_ranks(script: Path, n: int, args: list[str], timeout: int) -> str | None:
    """Run ``script args`` on ``n`` ranks; None when every rank exited 0, else one line saying why not."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(n)]
    cmd += [str(script), *args]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        _, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return f"timed out after {timeout} s"
    return None if proc.returncode == 0 else failure(stderr, proc.returncode)


def failure(stderr: str, code: int) -> str:
    """One line for ranks that failed: OOM, or the last exception line they printed."""
    if "OutOfMemoryError" in stderr:
        return "OOM"
    errors = re.findall(r"^\w*(?:Error|Exception): .*$", stderr, re.MULTILINE)
    return errors[-1][:80] if errors else f"torchrun exited with {code}"


def exit_rank(main: Callable[[], int]) -> NoReturn:
    """Run a rank's ``main`` and leave with ``os._exit``: its code, or 1 after printing the traceback."""
    try:
        code = main()
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
