"""A training run's folder: what makes a folder one (``run.json``), and what train may do to it.

    prepare_run_dir(cfg)        # rank 0: a fresh folder (run.json, config.json), or the checks of --resume
    is_train_run(folder)        # --overwrite deletes only a folder this says yes to
    read_run_id(folder)         # the run's identity: a fresh run is a fresh tracker run, --resume the same

RUN/run.json ({"run_id", "started"}) is written by ``offcurate train`` alone, first, when it starts a run.
Every Hugging Face model folder has a config.json, so config.json cannot say "this is a run" (``-o
final-merged/ --overwrite`` once replaced a model); run.json can. A run folder from before run.json is
still recognised by a config.json that holds train's options. The run id, not the folder's name, names
the run's tracker runs, so a new run in a folder named like an old one never appends to the old metrics.

The start model must lie outside the run folder (``--model RUN/final -o RUN --overwrite`` once deleted
the run it meant to continue from), and a path that does not exist is "no such folder", not a Hub error.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from pathlib import Path

from ..curate.io.errors import OutputExistsError
from ..curate.io.output import check_distinct
from .config import TrainConfig, write_json_atomic
from .model import check_model_path
from .tiny import TINY_MODEL

RUN_FILE = "run.json"


def is_train_run(folder: Path) -> bool:
    """``folder`` was made by ``offcurate train`` (run.json; or, before it, a config.json of train's)."""
    if (folder / RUN_FILE).is_file():
        return True
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, UnicodeDecodeError, ValueError):
        return False
    return isinstance(config, dict) and "objective" in config and "questions_per_step" in config


def read_run_id(folder: Path) -> str | None:
    """The id run.json holds (None for a run folder from before run.json, or a damaged run.json)."""
    try:
        run_id = json.loads((folder / RUN_FILE).read_text()).get("run_id")
    except (OSError, UnicodeDecodeError, ValueError, AttributeError):
        return None
    return run_id if isinstance(run_id, str) and run_id else None


def write_run_file(folder: Path) -> str:
    """A new identity for the run in ``folder``; returns its id."""
    run_id = uuid.uuid4().hex[:12]
    write_json_atomic(folder / RUN_FILE, {"run_id": run_id, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    return run_id


def check_start_model(cfg: TrainConfig) -> None:
    """The start model exists (a path that does not is "no such folder") and lies outside the run folder,
    which ``--overwrite`` deletes and a fresh run fills (refused like an input inside the output)."""
    if cfg.model == TINY_MODEL:
        return  # built into RUN/tiny-random on purpose
    check_model_path(cfg.model)
    if Path(cfg.model).exists():
        check_distinct(cfg.output, (cfg.model,))


def prepare_run_dir(cfg: TrainConfig) -> None:
    """Fresh run: an empty folder (--overwrite deletes only an earlier train run) with run.json and
    config.json. Resume: the saved options are checked; config.json is rewritten only once the resume is
    accepted (``save_resumed_options``), so a refused --resume leaves the run as it was."""
    out = cfg.output
    if cfg.resume:
        cfg.check_resumable(out)
        return
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{out}: exists and is not a folder")
    if out.exists() and any(out.iterdir()):
        if not cfg.overwrite:
            raise OutputExistsError(
                f"{out}: output folder exists and is not empty (pass --overwrite or --resume)"
            )
        if not is_train_run(out):
            raise OutputExistsError(
                f"{out}: not an offcurate train run folder (no {RUN_FILE}; a model or data folder?); "
                "refusing to delete it"
            )
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    write_run_file(out)
    cfg.save(out)


def save_resumed_options(cfg: TrainConfig) -> None:
    """On an accepted --resume: config.json records the latest invocation's options (same identity), and a
    run from before run.json gets its identity now."""
    if read_run_id(cfg.output) is None:
        write_run_file(cfg.output)
    cfg.save(cfg.output)


def cleanup_failed_start(cfg: TrainConfig, has_checkpoint: bool) -> None:
    """A fresh run that failed before its first checkpoint has nothing to resume: it leaves no folder, so
    the same command works once the cause (bad --model, full disk, no data) is fixed."""
    if not cfg.resume and not has_checkpoint and is_train_run(cfg.output):
        shutil.rmtree(cfg.output, ignore_errors=True)
