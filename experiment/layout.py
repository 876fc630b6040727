"""Where each stage of an experiment writes under the run folder, and where the next stage reads.

    layout = Layout(Path("runs/toy").resolve(), recipe)
    layout.voted            # RUN/curate/voted, or the recipe's vote output (data kind voted)
    layout.model_of("sft")  # RUN/train/sft/final (final-merged for a merged LoRA arm)

The folder names are the README's "Replicating the blog" tree; ``stages`` builds each stage on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .kinds import BENCHMARKS, DATA_KINDS
from .recipe import BASE, Recipe


@dataclass(frozen=True)
class Layout:
    """Where each stage writes under the run folder, and where the next one reads."""

    root: Path
    recipe: Recipe

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def curate(self) -> Path:
        return self.root / "curate"

    @property
    def voted(self) -> Path:
        if not DATA_KINDS[self.recipe.data.kind].curate:
            return Path(self.recipe.data.path)
        return self.curate / "voted"

    @property
    def base_model(self) -> str:
        return str(self.root / "base-model") if self.recipe.builds_model else self.recipe.model

    @property
    def figure2(self) -> Path:
        return self.root / "figure2"

    @property
    def train_input(self) -> Path:
        return self.root / "mix" if self.recipe.mix is not None else self.voted

    def arm(self, name: str) -> Path:
        return self.root / "train" / name

    def model_of(self, name: str) -> str:
        """The model evaluated as ``name``: the base model, or the arm's final (merged LoRA) weights."""
        if name == BASE:
            return self.base_model
        merged = self.arm(name) / "final-merged"
        return str(merged if merged.is_dir() else self.arm(name) / "final")

    def eval(self, name: str) -> Path:
        return self.root / "eval" / name

    def responses(self, name: str) -> Path:
        return self.root / "eval" / f"{name}-responses"

    def benchmarks(self) -> list[Path]:
        """The data kind's own benchmarks (if it brings any), then the recipe's files."""
        brought = sorted((self.data / BENCHMARKS).glob("*.jsonl"))
        return [*brought, *map(Path, self.recipe.eval.benchmarks)]

    def teacher_logprobs(self, name: str) -> Path:
        return self.root / "teacher-logprobs" / name

    @property
    def comparison(self) -> Path:
        return self.root / "comparison"

    @property
    def effects(self) -> Path:
        return self.root / "effects"
