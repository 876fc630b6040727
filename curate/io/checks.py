"""Range checks of numeric command-line options: a bad value is one line and exit 2, before any work.

    check_counts(("--workers", workers), ("--limit", limit))     # each None or >= 1
    check_positive(("--timeout", timeout))                       # each None or > 0

Without them a zero or negative count read as "no limit" (``rollout --limit 0`` sampled everything) or
failed deep inside a worker pool with a traceback. Typer's ``min=`` would print a usage box instead of
one line and widen every help panel with ``<int range> [x>=1]``.
"""

from __future__ import annotations

from .errors import InputError


def check_counts(*options: tuple[str, int | None]) -> None:
    """Each (option, value): a count of at least 1; None (the automatic default) passes."""
    for name, value in options:
        if value is not None and value < 1:
            raise InputError(f"{name} must be at least 1, got {value}")


def check_positive(*options: tuple[str, float | None]) -> None:
    """Each (option, value): strictly positive (a time limit of 0 s is no time at all); None passes."""
    for name, value in options:
        if value is not None and not value > 0:
            raise InputError(f"{name} must be > 0, got {value:g}")
