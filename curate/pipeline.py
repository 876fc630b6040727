"""``offcurate pipeline``: download (or the embedded sample) -> filter -> vote -> stats in one folder.

    offcurate pipeline -o runs/demo                 # the embedded sample, no network
    offcurate pipeline -i data/raw -o runs/full     # shards you already downloaded
    offcurate pipeline --format openr1-math -o runs/gold   # the embedded sample with gold answers

Each stage writes its own sub-folder (``raw/ math/ voted/ stats/``) atomically, so a stage folder that is
there is complete. ``pipeline.json`` records the run's options and ``"complete": true`` once the last stage
is in place. Run the same command again after an interruption and it resumes: the finished stages are
kept, the rest run again (other options are refused, so a run never mixes two settings). A complete run
is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .io.errors import OffcurateError, OutputExistsError
from .io.output import check_distinct, output_lock, write_errors
from .io.report import StageReport

RECORD = "pipeline.json"


def run_pipeline(
    output: Path,
    input_dir: Path | None = None,
    domains: tuple[str, ...] = ("math",),
    workers: int | None = None,
    timeout: float | None = 2.0,
    base_rollouts: Path | None = None,
    overwrite: bool = False,
    fmt: str = "openthoughts3",
) -> list[StageReport]:
    """``fmt``: the layout of ``input_dir`` (``filter --format``); without ``input_dir``, that format's
    embedded sample (OpenThoughts3, or OpenR1-Math-220k with gold answers)."""
    from .. import data

    output = Path(output)
    check_distinct(output, (input_dir, base_rollouts))
    if input_dir is None and fmt not in data.SAMPLES:
        raise OffcurateError(
            f"no embedded sample of --format {fmt} (there are: {', '.join(data.SAMPLES)}); give its raw "
            "shards with -i"
        )
    options = {
        "input": str(Path(input_dir).resolve()) if input_dir else "embedded sample",
        **({"format": fmt} if fmt != "openthoughts3" else {}),
        "domains": list(domains),
        "timeout": timeout,
        "base_rollouts": str(Path(base_rollouts).resolve()) if base_rollouts else None,
    }
    with write_errors(output):
        output.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(output):
            resume = _resumable(output, options, overwrite)
            output.mkdir(exist_ok=True)
            _record(output, options, complete=False)
            reports = _run_stages(output, input_dir, domains, workers, timeout, base_rollouts, resume, fmt)
            _record(output, options, complete=True)
    return reports


def _run_stages(
    output: Path,
    input_dir: Path | None,
    domains: tuple[str, ...],
    workers: int | None,
    timeout: float | None,
    base_rollouts: Path | None,
    resume: bool,
    fmt: str = "openthoughts3",
) -> list[StageReport]:
    """Each stage in turn; with ``resume`` a stage folder already there is kept, until one runs again."""
    from .download import write_sample
    from .filter import run_filter
    from .stats import run_stats
    from .vote import run_vote

    raw = output / "raw" if input_dir is None else input_dir
    steps = {
        "raw": lambda out: write_sample(out, overwrite=True, format=fmt),
        "math": lambda out: run_filter(raw, out, domains=domains, overwrite=True, workers=workers, fmt=fmt),
        "voted": lambda out: run_vote(output / "math", out, workers=workers, timeout=timeout, overwrite=True),
        "stats": lambda out: run_stats(
            output / "voted",
            out,
            base_rollouts=base_rollouts,
            workers=workers,
            timeout=timeout,
            overwrite=True,
        ),
    }
    if input_dir is not None:
        del steps["raw"]
    reports = []
    for name, step in steps.items():
        if resume and (output / name).is_dir():
            kept = StageReport(name, output=str(output / name))
            kept.counts["resumed"] = "kept (finished by an earlier run)"
            reports.append(kept.finish())
            continue
        resume = False  # a stage ran again: every later one must too
        reports.append(step(output / name))
    return reports


def _resumable(output: Path, options: dict, overwrite: bool) -> bool:
    """True to resume an unfinished run of the same options; False to start afresh; else refuse."""
    if overwrite or not output.exists() or (output.is_dir() and not any(output.iterdir())):
        return False
    try:
        record = json.loads((output / RECORD).read_text())
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or "options" not in record:
        raise OutputExistsError(f"{output}: output folder exists and is not empty (pass --overwrite)")
    if record.get("complete"):
        raise OutputExistsError(f"{output}: holds a finished pipeline run (pass --overwrite to run it again)")
    changed = [k for k, v in options.items() if record["options"].get(k) != v]
    if changed:
        was = ", ".join(f"{k}={record['options'].get(k)!r}" for k in changed)
        raise OffcurateError(
            f"{output}: holds an unfinished pipeline run with other options ({was}); run it with those "
            "to resume it, or pass --overwrite to start over"
        )
    return True


def _record(output: Path, options: dict, complete: bool) -> None:
    """Replace ``pipeline.json`` atomically (an interrupted write never leaves half a record)."""
    tmp = output / f".{RECORD}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"options": options, "complete": complete}, indent=2))
    os.replace(tmp, output / RECORD)
