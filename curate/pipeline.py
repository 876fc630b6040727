"""``offcurate pipeline``: download (or the embedded sample) -> filter -> vote -> stats in one folder.

    offcurate pipeline -o runs/demo                 # the embedded sample, no network
    offcurate pipeline -i data/raw -o runs/full     # shards you already downloaded

Each stage writes its own sub-folder (``raw/ math/ voted/ stats/``) atomically, so a run that fails
half-way leaves the finished stages in place and no half-written one.
"""

from __future__ import annotations

from pathlib import Path

from .io.errors import OutputExistsError
from .io.report import StageReport


def run_pipeline(
    output: Path,
    input_dir: Path | None = None,
    domains: tuple[str, ...] = ("math",),
    workers: int | None = None,
    timeout: float | None = 2.0,
    base_rollouts: Path | None = None,
    overwrite: bool = False,
) -> list[StageReport]:
    from .download import write_sample
    from .filter import run_filter
    from .stats import run_stats
    from .vote import run_vote

    output = Path(output)
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise OutputExistsError(f"{output}: output folder exists and is not empty (pass --overwrite)")
    reports = []
    raw = input_dir
    if raw is None:
        raw = output / "raw"
        reports.append(write_sample(raw, overwrite=True))
    reports.append(run_filter(raw, output / "math", domains=domains, overwrite=True))
    reports.append(
        run_vote(output / "math", output / "voted", workers=workers, timeout=timeout, overwrite=True)
    )
    reports.append(
        run_stats(
            output / "voted",
            output / "stats",
            base_rollouts=base_rollouts,
            workers=workers,
            timeout=timeout,
            overwrite=True,
        )
    )
    return reports
