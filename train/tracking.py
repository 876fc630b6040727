"""Experiment trackers beside metrics.jsonl: ``--report-to tensorboard,wandb,trackio`` (TRL's names).

    offcurate train ... --report-to tensorboard        # RUN/tensorboard/; then: tensorboard --logdir RUN
    WANDB_MODE=offline offcurate train ... --report-to wandb     # RUN/wandb/, `wandb sync` it later
    offcurate train ... --report-to trackio            # local trackio database; `trackio show`

Every numeric field of a metrics row goes to each tracker as ``train/<field>`` at the row's step; the run's
options go in as its config. Rank 0 alone reports. Projects: $WANDB_PROJECT / $TRACKIO_PROJECT, else
``offcurate``; the run is named after the output folder, and ``--resume`` continues the same run (wandb:
its id is kept in RUN/wandb-run-id; TensorBoard drops events past the resumed step, as metrics.jsonl does).
None of the three packages is a dependency: a missing one is a one-line error before the run starts.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
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


def _scalars(row: dict[str, Any]) -> dict[str, float]:
    return {
        f"train/{k}": float(v)
        for k, v in row.items()
        if k != "step" and isinstance(v, int | float) and not isinstance(v, bool)
    }


class Trackers:
    """The open trackers of a run: ``log(row)`` after each step, ``close()`` at the end."""

    def __init__(self, names: tuple[str, ...], run_dir: Path, config: dict, resume_step: int | None):
        self.writers: list[tuple[str, Any]] = []
        for name in names:
            self.writers.append((name, getattr(self, f"_open_{name}")(run_dir, config, resume_step)))

    @staticmethod
    def _open_tensorboard(run_dir: Path, config: dict, resume_step: int | None):
        from torch.utils.tensorboard import SummaryWriter

        purge = resume_step + 1 if resume_step is not None else None
        return SummaryWriter(log_dir=str(run_dir / "tensorboard"), purge_step=purge)

    @staticmethod
    def _open_wandb(run_dir: Path, config: dict, resume_step: int | None):
        import wandb

        id_file = run_dir / "wandb-run-id"
        run_id = id_file.read_text().strip() if resume_step is not None and id_file.is_file() else None
        run_id = run_id or uuid.uuid4().hex[:12]
        id_file.write_text(run_id + "\n")
        project = os.environ.get("WANDB_PROJECT", "offcurate")
        return wandb.init(
            project=project, name=run_dir.name, id=run_id, resume="allow", dir=str(run_dir), config=config
        )

    @staticmethod
    def _open_trackio(run_dir: Path, config: dict, resume_step: int | None):
        import trackio

        project = os.environ.get("TRACKIO_PROJECT", "offcurate")
        trackio.init(project=project, name=run_dir.name, config=config, resume="allow")
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
