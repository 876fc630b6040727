"""Output folders every stage writes: atomic, exclusive, never over or inside an input, one line on failure.

    with atomic_output(output, overwrite, inputs=(input_dir,)) as tmp:
        ...write into tmp...                 # renamed to ``output`` only if the block succeeds

Why each piece:
- a temporary sibling ``.OUT.tmp-PID`` renamed into place (``--overwrite``: swapped in one step with
  ``renameat2(RENAME_EXCHANGE)``), so an interrupted run never leaves a folder that looks complete; a rerun
  removes the siblings an interrupted run (even ``kill -9``) left behind;
- a lock (``flock`` on ``.OUT.lock``, released by the kernel when the process dies), so a second writer
  of the same output stops (exit 2) instead of silently replacing the first one's finished result; the
  final rename without ``--overwrite`` also refuses a folder that appeared meanwhile (``rename(2)`` fails
  on a non-empty target), whoever made it;
- output equal to, inside or around an input is refused: ``--overwrite`` would delete the input, and an
  output inside it would be read back as input by the next run;
- a full disk, a read-only or forbidden folder become one line naming the path (``write_errors``).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import os
import re
import shutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import OffcurateError, OutputExistsError

# errno values that say "this cannot be written here", not "offcurate has a bug"
WRITE_FAILURES = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}
_WRITE_FAILURE_TEXT = tuple(os.strerror(code) for code in WRITE_FAILURES)
_HELD: set[Path] = set()  # lock files this process holds


class OutputBusyError(OffcurateError):
    """Another process holds the lock of this output."""


def check_output(output: Path | str, overwrite: bool, inputs: Iterable[Path | str | None] = ()) -> None:
    """Refuse an output that holds something (unless ``overwrite``) or is the same as, inside or around an
    input. Cheap: stages call it before their long work too, so a refusal costs nothing."""
    output = Path(output)
    check_distinct(output, inputs)
    if overwrite or not output.exists():
        return
    if not output.is_dir():
        raise OutputExistsError(f"{output}: exists and is not a folder (pass --overwrite)")
    if any(output.iterdir()):
        raise OutputExistsError(f"{output}: output folder exists and is not empty (pass --overwrite)")


def check_distinct(output: Path, inputs: Iterable[Path | str | None]) -> None:
    """Refuse an output that is an input, lies inside one, or holds one (symlinks resolved)."""
    target = output.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if target == source:
            raise OffcurateError(f"{output}: the output is the input folder; choose another --output")
        if source in target.parents:
            raise OffcurateError(
                f"{output}: the output is inside the input {given}; the next read of the input would "
                "take the output as input (choose a folder outside it)"
            )
        if target in source.parents:
            raise OffcurateError(
                f"{output}: the input {given} is inside the output folder; writing the output would "
                "replace it (choose another --output)"
            )


@contextlib.contextmanager
def atomic_output(
    output: Path | str, overwrite: bool = False, inputs: Iterable[Path | str | None] = ()
) -> Iterator[Path]:
    """Yield a temporary sibling folder; rename it to ``output`` only if the block succeeds (module doc)."""
    output, inputs = Path(output), list(inputs)
    check_output(output, overwrite, inputs)
    with write_errors(output):
        output.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(output):
            check_output(output, overwrite, inputs)  # again: it may have changed before the lock was ours
            remove_stale_siblings(output)
            tmp = output.parent / f".{output.name}.tmp-{os.getpid()}"
            tmp.mkdir()
            try:
                yield tmp
                _publish(tmp, output, overwrite)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise


def _publish(tmp: Path, output: Path, overwrite: bool) -> None:
    """Rename ``tmp`` to ``output``; without ``overwrite`` the rename itself refuses a non-empty target."""
    if overwrite and output.exists():
        old = output.parent / f".{output.name}.old-{os.getpid()}"
        if exchange(tmp, output):  # one atomic step: no moment without an output
            tmp.rename(old)
        else:
            output.rename(old)
            tmp.rename(output)
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
        return
    try:
        tmp.rename(output)  # replaces a missing or empty folder, never a non-empty one
    except OSError as err:
        if err.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
            raise
        raise OutputExistsError(
            f"{output}: appeared while this run was writing it; refusing to replace it (nothing was "
            "written; pass --overwrite to replace it)"
        ) from None


def exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``); False where the system
    or the filesystem cannot, so the caller falls back to two renames."""
    function = (
        getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if sys.platform == "linux" else None
    )
    if function is None:
        return False
    at_cwd, rename_exchange = -100, 2
    if function(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


@contextlib.contextmanager
def output_lock(output: Path) -> Iterator[None]:
    """Hold ``flock`` on ``.NAME.lock`` next to ``output`` for the block, or fail at once naming the holder.

    The kernel drops the lock when its process dies (even ``kill -9``), so a stale lock file never blocks.
    The file is removed on exit; a process that opened it before removal sees another inode and retries.
    Reentrant within a process (a stage may lock its output, then publish it with ``atomic_output``).
    """
    lock = output.parent / f".{output.name}.lock"
    key = lock.resolve()
    if key in _HELD:  # this process holds it already (rollout locks its output, then its final rename)
        yield
        return
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise OutputBusyError(
                f"{output}: another offcurate process (pid {holder}) is writing this output; "
                "wait for it to finish or choose another --output"
            ) from None
        try:
            current = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)
    _HELD.add(key)
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        _HELD.discard(key)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        os.close(fd)


def remove_stale_siblings(output: Path) -> list[Path]:
    """Remove ``.NAME.tmp-PID`` / ``.NAME.old-PID`` siblings of ``output``: under the output's lock no live
    writer owns one, so each was left by an interrupted run. Returns what was removed."""
    pattern = re.compile(rf"\.{re.escape(output.name)}\.(tmp|old)-\d+")
    stale = [p for p in output.parent.iterdir() if pattern.fullmatch(p.name)]
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    if stale:
        from .report import console

        names = ", ".join(p.name for p in stale)
        console.print(f"removed {names}: left by an interrupted run", style="dim", highlight=False)
    return stale


def is_write_failure(err: BaseException) -> bool:
    """A full disk, a quota, a read-only or forbidden folder (pyarrow's OSError may carry no errno)."""
    if not isinstance(err, OSError):
        return False
    if err.errno is not None:
        return err.errno in WRITE_FAILURES
    return any(text in str(err) for text in _WRITE_FAILURE_TEXT)


@contextlib.contextmanager
def write_errors(output: Path | str) -> Iterator[None]:
    """Turn a write failure (``is_write_failure``) inside the block into one line naming the path."""
    try:
        yield
    except OSError as err:
        if not is_write_failure(err):
            raise
        where = err.filename or output
        reason = err.strerror or str(err).strip().splitlines()[0]
        raise OffcurateError(f"{where}: {reason}; {output} was not written") from None
