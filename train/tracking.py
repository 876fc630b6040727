"""Experiment trackers beside metrics.jsonl: ``--report-to tensorboard,wandb,trackio`` (TRL's names).

    offcurate train ... --report-to tensorboard        # RUN/tensorboard/; then: tensorboard --logdir RUN
    WANDB_MODE=offline offcurate train ... --report-to wandb     # RUN/wandb/, `wandb sync` it later
    offcurate train ... --report-to trackio            # local trackio database; `trackio show`

Every numeric field of a metrics row goes to each tracker as ``train/<field>`` at the row's step; the run's
options go in as its config. Rank 0 alone reports. Projects: $WANDB_PROJECT / $TRACKIO_PROJECT, else
``offcurate``. A fresh run is a fresh tracker run and ``--resume`` continues it: the run's identity is the
id in RUN/run.json (``run_folder``), not the folder's name, so a new run in a folder named like an older
one never appends to the older one's metrics (trackio names its run NAME-ID, wandb keeps its id in
RUN/wandb-run-id; TensorBoard drops events past the resumed step, as metrics.jsonl does). None of the
three packages is a dependency: a missing one is a one-line error before the run starts, and so is wandb
without an API key and without WANDB_MODE=offline (wandb would otherwise fail after the model loaded).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

from ..curate.io.errors import OffcurateError

REPORTERS = ("tensorboard", "wandb", "trackio")


def parse_report_to(value: str) -> tuple[str, ...]:
    """``none`` or a comma-separated subset of the trackers (order kept, duplicates dropped)."""
    names = [v.strip() for v in value.split(",") if v.strip()]
    if names == ["none"]:
        return ()
    bad = [n for n in names if n not in REPORTERS]
    if bad or not names:
        raise OffcurateError(
            f"--report-to {value!r}: expected none or a comma-separated subset of {', '.join(REPORTERS)}"
        )
    return tuple(dict.fromkeys(names))


def check_installed(names: tuple[str, ...]) -> None:
    """Fail before the run starts when a tracker's package is missing."""
    for name in names:
        if importlib.util.find_spec(name) is None:
            raise OffcurateError(f"--report-to {name} needs the {name} package: pip install {name}")


OFFLINE_MODES = ("offline", "disabled", "dryrun")


def check_credentials(names: tuple[str, ...]) -> None:
    """wandb online needs an API key ($WANDB_API_KEY or `wandb login`'s netrc entry): say so in one line
    before anything runs, instead of wandb's traceback once the model has loaded."""
    if "wandb" not in names or os.environ.get("WANDB_MODE", "").lower() in OFFLINE_MODES:
        return
    if os.environ.get("WANDB_API_KEY") or _netrc_has(
        os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")
    ):
        return
    raise OffcurateError(
        "--report-to wandb: no W&B API key; run `wandb login` (or set WANDB_API_KEY), or set "
        "WANDB_MODE=offline to log into RUN/wandb/ and `wandb sync` it later"
    )


def _netrc_has(url: str) -> bool:
    import netrc
    from urllib.parse import urlparse

    path = os.environ.get("NETRC") or os.path.expanduser("~/.netrc")
    try:
        entry = netrc.netrc(path).authenticators(urlparse(url).hostname or url)
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(entry and entry[2])


def tracker_name(run_dir: Path, run_id: str) -> str:
    """The run's name in a tracker: its folder's name (what a person looks for) and its id (what makes a
    new run in a folder of the same name a new tracker run)."""
    return f"{run_dir.resolve().name}-{run_id}"


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    return {
        f"train/{k}": float(v)
        for k, v in row.items()
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }


class Trackers:
    """The open trackers of a run: ``log(row)`` after each step, ``close()`` at the end."""

    def __init__(
        self, names: tuple[str, ...], run_dir: Path, config: dict, resume_step: int | None, run_id: str
    ):
        self.writers: list[tuple[str, Any]] = []
        for name in names:
            self.writers.append((name, getattr(self, f"_open_{name}")(run_dir, config, resume_step, run_id)))

    @staticmethod
    def _open_tensorboard(run_dir: Path, config: dict, resume_step: int | None, run_id: str):
        from torch.utils.tensorboard import SummaryWriter

        purge = resume_step + 1 if resume_step is not None else None
        return SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge)

    @staticmethod
    def _open_wandb(run_dir: Path, config: dict, resume_step: int | None, run_id: str):
        import wandb

        id_file = run_dir / "wandb-run-id"
        saved = id_file.read_text().strip() if resume_step is not None and id_file.is_file() else None
        run_id = saved or run_id
        id_file.write_text(run_id + "\n")
        project = os.environ.get("WANDB_PROJECT", "offcurate")
        return wandb.init(
            project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir), config=config
        )

    @staticmethod
    def _open_trackio(run_dir: Path, config: dict, resume_step: int | None, run_id: str):
        import trackio

        project = os.environ.get("TRACKIO_PROJECT", "offcurate")
        resume = "allow" if resume_step is not None else "never"  # a fresh run never joins an older one
        trackio.init(project=project, name=tracker_name(run_dir, run_id), config=config, resume=resume)
        return trackio

    def log(self, row: dict[str, Any]) -> None:
        step, values = int(row["step"]), _scalars(row)
        for name, writer in self.writers:
            if name == "tensorboard":
                for key, value in values.items():
                    writer.add_scalar(key, value, step)
            else:
                writer.log(values, step=step)

    def close(self) -> None:
        for name, writer in self.writers:
            if name == "tensorboard":
                writer.close()
            else:
                writer.finish()
        self.writers = []
