"""``offcurate experiment``: run a recipe's stages in order, resumably, and end with one comparison.

    result = run_experiment(load_recipe("toy"), Path("runs/toy"))
    result.print()                        # the per-benchmark tables, Figure 2, and the stages' times

RUN/experiment.json records the recipe (what decides the results) and each finished stage with its time
and equivalent command. Run the same command again after an interruption and it continues: a finished
stage is kept, a half-finished train resumes from its last checkpoint (``--resume``), a half-finished
rollout or eval sampling from its finished batches; a later stage never reads a stage that is not finished.
A recipe that differs from the recorded one is refused with the keys that changed, as ``offcurate
pipeline`` refuses other options; ``--overwrite`` starts over. A finished run prints its comparison again.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
from rich.table import Table

from ..curate.io.errors import OffcurateError, OutputExistsError
from ..curate.io.output import output_lock, write_errors
from ..curate.io.report import console, frame_table
from .effects import effects_tables
from .recipe import Recipe
from .stages import Layout, Stage, plan

RECORD = "experiment.json"


@dataclass
class StageRun:
    name: str
    status: str  # "ran", "resumed", "kept"
    seconds: float
    folder: str


@dataclass
class ExperimentRun:
    """What ``run_experiment`` returns: the stages, and the comparison as written."""

    output: Path
    stages: list[StageRun] = field(default_factory=list)

    def print(self) -> None:
        from ..eval.compare import comparison_tables, read_comparison

        for table in comparison_tables(read_comparison(self.output / "comparison")):
            console.print(table)
        figure2 = self.output / "figure2" / "figure2.parquet"
        if figure2.is_file():
            console.print(frame_table(pl.read_parquet(figure2), "Figure 2: base pass rate on all-positive"))
        for table in effects_tables(self.output / "effects"):
            console.print(table)
        console.print(stage_table(self.stages))
        console.print(
            f"comparison: {self.output / 'comparison'} (radar.png, compare.parquet)", highlight=False
        )


def stage_table(stages: list[StageRun]) -> Table:
    table = Table(title="offcurate experiment", title_justify="left")
    for name in ("stage", "status", "time", "output"):
        table.add_column(name, justify="right" if name == "time" else "left")
    for s in stages:
        table.add_row(
            s.name, s.status, f"{s.seconds:.1f} s", s.folder, style="dim" if s.status == "kept" else None
        )
    table.add_row("total", "", f"{sum(s.seconds for s in stages):.1f} s", "", style="bold")
    return table


def run_experiment(recipe: Recipe, output: Path, overwrite: bool = False) -> ExperimentRun:
    """Run (or continue) ``recipe`` into ``output``; see the module docstring."""
    output = Path(output)
    with write_errors(output):
        output.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(output):
            record = _start(output, recipe, overwrite)
            stages = plan(Layout(output.resolve(), recipe))
            result = ExperimentRun(output)
            for i, stage in enumerate(stages, 1):
                result.stages.append(_run_stage(stage, i, len(stages), record, output))
            record["complete"] = True
            _save(output, record)
    return result


def _run_stage(stage: Stage, i: int, n: int, record: dict, output: Path) -> StageRun:
    done = record["stages"].get(stage.name)
    if (done is not None and stage.folder.exists()) or stage.finished():
        seconds = float((done or {}).get("seconds", 0.0))
        return StageRun(stage.name, "kept", seconds, str(stage.folder))
    status = "resumed" if stage.partial() else "ran"
    verb = "resuming" if status == "resumed" else "running"
    console.rule(f"[bold]experiment {i}/{n}: {verb} {stage.name}", style="cyan")
    console.print(f"[dim]{stage.command}[/]", highlight=False, soft_wrap=True)
    started = time.perf_counter()
    stage.run()
    seconds = time.perf_counter() - started
    record["stages"][stage.name] = {"seconds": round(seconds, 3), "command": stage.command}
    _save(output, record)
    return StageRun(stage.name, status, seconds, str(stage.folder))


def _start(output: Path, recipe: Recipe, overwrite: bool) -> dict[str, Any]:
    """The record to continue (same recipe), or a fresh one; a changed recipe is refused."""
    identity = _jsonable(recipe.identity())
    fresh = {"recipe": identity, "source": recipe.source, "stages": {}, "complete": False}
    if not output.exists() or (output.is_dir() and not any(output.iterdir())):
        output.mkdir(exist_ok=True)
        _save(output, fresh)
        return fresh
    try:
        record = json.loads((output / RECORD).read_text())
    except (OSError, ValueError):
        record = None
    if not isinstance(record, dict) or "recipe" not in record:
        raise OutputExistsError(
            f"{output}: output folder exists and is not an offcurate experiment; choose another -o"
        )
    if overwrite:
        shutil.rmtree(output)
        output.mkdir()
        _save(output, fresh)
        return fresh
    changed = differences(record["recipe"], identity)
    if changed:
        state = "a finished" if record.get("complete") else "an unfinished"
        shown = "; ".join(changed[:6]) + (f"; and {len(changed) - 6} more" if len(changed) > 6 else "")
        raise OffcurateError(
            f"{output}: holds {state} experiment of another recipe ({shown}); run it with its recipe "
            f"({record.get('source') or 'as recorded in experiment.json'}) to continue, or pass --overwrite "
            "to start over"
        )
    record["source"] = recipe.source
    return record


def differences(old: Any, new: Any, where: str = "") -> list[str]:
    """Every leaf that differs between two recorded recipes, as ``path: old -> new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in [*old, *(k for k in new if k not in old)]:
            path = f"{where}.{key}" if where else str(key)
            out += differences(old.get(key), new.get(key), path)
        return out
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{where}[{i}]")]
    return [] if old == new else [f"{where}: {json.dumps(old)} -> {json.dumps(new)}"]


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _save(output: Path, record: dict) -> None:
    """Replace experiment.json atomically: an interrupted write never leaves half a record."""
    tmp = output / f".{RECORD}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, output / RECORD)
