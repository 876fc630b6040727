"""The ``offcurate experiment`` command (registered in cli.py): a recipe run end to end, resumably.

    offcurate experiment --list                          # the embedded recipes
    offcurate experiment toy -o runs/toy                 # the CPU-sized study, on this machine
    offcurate experiment seed-1.5b --show > my.yaml      # a recipe to edit
    offcurate experiment my.yaml -o runs/my --dry-run    # the stages and their commands, nothing run

Nothing heavy is imported until a recipe runs, so ``offcurate --help`` stays instant.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Annotated

import typer

from ..curate.io.errors import OffcurateError

EXAMPLE = """\
```yaml
description: bias vs no bias vs SFT on the embedded sample
seed: 0
data: {kind: sample}            # sample | raw (path:) | voted (path:)
model: tiny-random              # a folder, a Hub id, or a built model
base_rollouts: {k: 8, max_new_tokens: 512}       # Figure 2 (optional)
mix: {bucket_by: pass_rate, weights: {hard: 0.5, easy: 0.5}}   # optional
train: {max_steps: 20, lr: 1.0e-5, questions_per_step: 4}   # every arm
arms:
  - {name: bias, train: {bias: 0.5}}
  - {name: no-bias, train: {bias: 0}}
  - {name: sft, train: {loss: sft}, nproc: 2}   # torchrun, 2 processes
eval: {benchmarks: [math500.jsonl], k: 4, max_new_tokens: 512}
```"""


def experiment_command(
    recipe: Annotated[
        str | None,
        typer.Argument(
            metavar="RECIPE",
            help="A recipe file (YAML) or the name of an embedded recipe (see --list).",
            show_default=False,
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Run folder: one sub-folder per stage, experiment.json."),
    ] = None,
    benchmarks_dir: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="Read the recipe's relative benchmark paths from DIR (default: the recipe file's folder).",
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete an earlier experiment in OUTPUT and start over.")
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check the recipe and print the stages and their commands.")
    ] = False,
    list_: Annotated[bool, typer.Option("--list", help="List the embedded recipes and exit.")] = False,
    show: Annotated[bool, typer.Option("--show", help="Print the recipe's YAML (to copy and edit).")] = False,
) -> None:
    """Run the blog's study from one recipe: curate, Figure 2, mix, train every arm, evaluate, compare.

    Each stage is the ordinary command (pipeline, rollout, stats --base-rollouts, sample, train, eval,
    eval --compare) writing its own folder under OUTPUT, so every intermediate opens in `datasets`. It
    ends with one table per benchmark (the base and every arm: pass@1 with its 95% interval over
    problems, maj@k, problems, samples, and the chain checks: share of samples that ended their turn,
    share with an answer the extractor reads), `comparison/radar.png` and Figure 2.

    Interrupted? Run the same command again: finished stages are kept, a half-finished train resumes
    from its checkpoint, a half-finished sampling from its finished batches. A changed recipe is
    refused, naming what changed (--overwrite starts over). A recipe (every key but model, arms and eval
    is optional; an arm's `train` takes `offcurate train`'s options, with underscores):

    EXAMPLE
    """
    from ..curate.io.report import console

    if list_:
        from .recipe import list_recipes

        for name, description in list_recipes().items():
            console.print(f"[bold]{name}[/]  {description}", highlight=False, soft_wrap=True)
        return
    if recipe is None:
        raise OffcurateError("give a RECIPE (a YAML file or an embedded name: offcurate experiment --list)")
    from .recipe import find_recipe, load_recipe

    if show:
        print(find_recipe(recipe).read_text(), end="")
        return
    from ..train.extra import require_train_extra

    require_train_extra("offcurate experiment")  # the recipe's train options are checked by the trainer
    loaded = load_recipe(recipe, benchmarks_dir)
    if output is None:
        raise OffcurateError("give the run folder: -o runs/NAME")
    from .stages import Layout, plan

    if dry_run:
        for i, stage in enumerate(plan(Layout(output.resolve(), loaded)), 1):
            console.print(
                f"[bold]{i:2d}. {stage.name}[/]  [dim]{stage.command}[/]", highlight=False, soft_wrap=True
            )
        return
    from .runner import run_experiment

    run_experiment(loaded, output, overwrite=overwrite).print()


experiment_command.__doc__ = experiment_command.__doc__.replace(
    "    EXAMPLE", textwrap.indent(EXAMPLE, "    ")
)
