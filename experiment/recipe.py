"""An experiment recipe: the data, the base model, Figure 2's rollouts, the mix, the arms, the benchmarks.

    recipe = load_recipe("toy")                                  # an embedded recipe, by name
    recipe = load_recipe("my.yaml", benchmarks_dir=Path("b"))    # a file; relative paths resolved
    recipe.identity()                                            # what a resumed run must repeat

Every section is a dataclass below; ``schema.build`` reads the YAML into it and names the first bad key or
value in one line (``my.yaml: arms[1].train.bias: expected a number, got 'high' (text)``). Relative paths
(``data.path``, ``model`` when it is a folder) are resolved against the recipe file's folder, or the working
directory for an embedded recipe; a benchmark file is looked for in ``--benchmarks-dir`` first, then there
(an embedded recipe's own benchmark files ship beside it). ``offcurate experiment --list`` shows the
embedded recipes (``recipes/*.yaml``, package data).
"""

from __future__ import annotations

import inspect
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .kinds import BUILT_FROM, DATA_KINDS, MODEL_BUILDERS
from .schema import RecipeError, above, at_least, build, complaint, one_of, read_yaml, within
from .train_options import check_ranges, check_train_options

RECIPES = Path(__file__).parent / "recipes"
BUCKET_BY = ("pass_rate", "vote_share", "base_pass_rate", "difficulty")
ROLLOUT_QUESTIONS = ("ok", "all-positive", "all")
BASE = "base"  # the eval folder of the untrained model; no arm may take the name
_ARM_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check(check) -> dict:
    return {"check": check}


@dataclass
class Data:
    kind: str = "sample"
    path: str | None = None  # raw shards (kind raw) or a vote output (kind voted)
    options: dict[str, Any] = field(default_factory=dict)  # keyword arguments of a writing kind's `write`
    workers: int | None = field(default=None, metadata=_check(at_least(1)))
    timeout: float = field(default=2.0, metadata=_check(above(0)))


@dataclass
class Sampling:
    """How a model is sampled (`offcurate rollout` / `eval --model` options)."""

    k: int = field(default=4, metadata=_check(at_least(1)))
    max_new_tokens: int = field(default=4096, metadata=_check(at_least(1)))
    temperature: float = field(default=0.6, metadata=_check(at_least(0)))
    top_p: float = field(default=0.95, metadata=_check(within(0, 1)))
    batch_size: int = field(default=64, metadata=_check(at_least(1)))
    backend: str = field(default="auto", metadata=_check(one_of("auto", "transformers", "vllm", "openai")))
    device: str = "auto"
    dtype: str = field(default="auto", metadata=_check(one_of("auto", "bf16", "fp32")))
    # the engine (`offcurate rollout --help`, "Sampling at scale" in README): GPUs per engine and engines
    tensor_parallel_size: int = field(default=1, metadata=_check(at_least(1)))
    data_parallel_size: int = field(default=1, metadata=_check(at_least(1)))
    max_model_len: int | None = field(default=None, metadata=_check(at_least(1)))
    gpu_memory_utilization: float | None = field(default=None, metadata=_check(within(0, 1)))
    endpoint: str | None = None  # backend openai: the server's base URL
    api_key_env: str | None = None
    concurrency: int | None = field(default=None, metadata=_check(at_least(1)))


@dataclass
class BaseRollouts(Sampling):
    """The base model's samples on the labeled questions: Figure 2, and `mix.bucket_by: base_pass_rate`."""

    k: int = field(default=8, metadata=_check(at_least(1)))
    questions: str = field(default="all-positive", metadata=_check(one_of(*ROLLOUT_QUESTIONS)))
    limit: int | None = field(default=None, metadata=_check(at_least(1)))


@dataclass
class Mix:
    """`offcurate sample`: the training mix (weights or counts per bucket)."""

    bucket_by: str = field(default="pass_rate", metadata=_check(one_of(*BUCKET_BY)))
    edges: list[float] | None = None
    weights: dict[str, float] | None = None
    counts: dict[str, int] | None = None
    questions: int | None = field(default=None, metadata=_check(at_least(1)))
    max_per_question: int | None = field(default=None, metadata=_check(at_least(1)))


@dataclass
class Arm:
    name: str
    train: dict[str, Any] = field(default_factory=dict)  # `offcurate train` options over the shared ones
    nproc: int = field(default=1, metadata=_check(at_least(1)))  # > 1: torchrun --nproc-per-node N


@dataclass
class TeacherLogprobs:
    """How likely each model (base and arms) finds the teacher's traces: all-positive, mixed right, wrong."""

    questions: int | None = field(default=None, metadata=_check(at_least(1)))  # first N of each kind
    max_len: int = field(default=4096, metadata=_check(at_least(16)))  # longer traces are skipped
    device: str = "auto"


@dataclass
class Eval(Sampling):
    benchmarks: list[str] = field(default_factory=list)
    workers: int | None = field(default=None, metadata=_check(at_least(1)))
    timeout: float = field(default=2.0, metadata=_check(above(0)))


@dataclass
class Recipe:
    model: str
    arms: list[Arm]
    eval: Eval
    description: str = ""
    seed: int = 0
    data: Data = field(default_factory=Data)
    base_rollouts: BaseRollouts | None = None
    mix: Mix | None = None
    teacher_logprobs: TeacherLogprobs | None = None
    train: dict[str, Any] = field(default_factory=dict)  # `offcurate train` options every arm shares
    source = ""  # the file it was read from (a plain attribute, not a recipe key)

    def arm_options(self, arm: Arm) -> dict[str, Any]:
        """The arm's `offcurate train` options: the shared ones, overridden by the arm's; seeded."""
        return {"seed": self.seed, **self.train, **arm.train}

    @property
    def builds_model(self) -> bool:
        return self.model in MODEL_BUILDERS

    def identity(self) -> dict[str, Any]:
        """What decides the results: everything but the description, the worker counts and the file."""
        data = asdict(self)
        data.pop("description")
        data["data"].pop("workers")
        data["eval"].pop("workers")
        return data


def list_recipes() -> dict[str, str]:
    """Embedded recipe name -> its description."""
    out = {}
    for path in sorted(RECIPES.glob("*.yaml")):
        raw = read_yaml(path)
        out[path.stem] = (raw or {}).get("description", "") if isinstance(raw, dict) else ""
    return out


def find_recipe(name_or_path: str) -> Path:
    """An embedded recipe by name, else a file path."""
    embedded = RECIPES / f"{name_or_path}.yaml"
    if "/" not in name_or_path and not name_or_path.endswith((".yaml", ".yml")) and embedded.is_file():
        return embedded
    path = Path(name_or_path)
    if not path.is_file():
        names = ", ".join(list_recipes())
        raise RecipeError(f"{name_or_path}: no such recipe file, nor an embedded recipe ({names})")
    return path


def load_recipe(name_or_path: str, benchmarks_dir: Path | None = None) -> Recipe:
    """Read, type-check and resolve a recipe; any problem is one ``RecipeError`` line naming the file."""
    path = find_recipe(str(name_or_path))
    label = path.name if path.parent == RECIPES else str(path)
    raw = read_yaml(path, label)
    try:
        recipe = build(Recipe, raw)
        _check_recipe(recipe)
        embedded = path.parent == RECIPES
        _resolve(recipe, Path.cwd() if embedded else path.parent, benchmarks_dir, embedded)
    except RecipeError as err:
        raise RecipeError(f"{label}: {err}") from None
    recipe.source = str(path)
    return recipe


def _check_recipe(recipe: Recipe) -> None:
    """What one field's type cannot say: kinds, names, and how the sections fit together."""
    kind = DATA_KINDS.get(recipe.data.kind)
    if kind is None:
        raise complaint("data.kind", f"unknown kind {recipe.data.kind!r} (one of {', '.join(DATA_KINDS)})")
    if kind.path and not recipe.data.path:
        raise complaint("data.path", f"missing (required by kind {recipe.data.kind}: {kind.help})")
    if not kind.path and recipe.data.path:
        raise complaint("data.path", f"kind {recipe.data.kind} takes no path: remove it")
    if recipe.data.options:
        recipe.data.options = _check_data_options(recipe.data.kind, recipe.data.options, recipe.seed)
    if not recipe.model.strip():
        raise complaint("model", "empty: give a folder, a Hub id or one of " + ", ".join(MODEL_BUILDERS))
    needs = BUILT_FROM.get(recipe.model)
    if needs and recipe.data.kind != needs:
        raise complaint("model", f"{recipe.model} is built from data kind {needs}: set data.kind: {needs}")
    if not recipe.arms:
        raise complaint("arms", "empty: give at least one arm (a name and its train options)")
    if not recipe.eval.benchmarks and not kind.brings_benchmarks:
        raise complaint("eval.benchmarks", "empty: give at least one benchmark file")
    mix = recipe.mix
    if mix is not None:
        if mix.weights is not None and mix.counts is not None:
            raise complaint("mix", "give `weights` or `counts`, not both")
        if mix.counts is not None and mix.questions is not None:
            raise complaint("mix.questions", "splits `weights`; with `counts` remove it")
        if mix.bucket_by == "base_pass_rate" and recipe.base_rollouts is None:
            raise complaint("mix.bucket_by", "base_pass_rate needs a `base_rollouts` section")
        for where, shares in (("weights", mix.weights), ("counts", mix.counts)):
            for bucket, value in (shares or {}).items():
                if value < 0:
                    raise complaint(f"mix.{where}.{bucket}", f"must be >= 0, got {value}")
    recipe.train = check_train_options(recipe.train, "train")
    seen: dict[str, int] = {}
    for i, arm in enumerate(recipe.arms):
        where = f"arms[{i}]"
        if not _ARM_NAME.match(arm.name) or arm.name == BASE:
            why = "is reserved for the base model" if arm.name == BASE else "must be a folder name"
            raise complaint(f"{where}.name", f"{arm.name!r} {why} (letters, digits, . _ -)")
        if arm.name in seen:
            raise complaint(f"{where}.name", f"{arm.name!r} is also arms[{seen[arm.name]}]'s name")
        seen[arm.name] = i
        arm.train = check_train_options(arm.train, f"{where}.train")

        def where_of(key: str, arm=arm, where=where) -> str:
            return f"{where}.train.{key}" if key in arm.train or key not in recipe.train else f"train.{key}"

        check_ranges(recipe.arm_options(arm), where_of)


def _check_data_options(name: str, options: dict[str, Any], seed: int) -> dict[str, Any]:
    """A writing kind's ``data.options``: built into its options dataclass (types, ranges, a misspelt
    key's closest match), else bound to its ``write``'s signature; returned with their values typed."""
    kind = DATA_KINDS[name]
    if kind.write is None:
        raise complaint("data.options", f"kind {name} writes no data: remove them")
    if kind.options is not None:
        try:
            built = build(kind.options, options, "data.options")
        except ValueError as err:  # the dataclass's own check of how its values fit together
            raise complaint("data.options", f"kind {name}: {err}") from None
        return {key: getattr(built, key) for key in options}
    try:
        inspect.signature(kind.write).bind(Path("out"), seed, **options)
    except TypeError as err:
        raise complaint("data.options", f"kind {name}: {err}") from None
    return options


def _resolve(recipe: Recipe, folder: Path, benchmarks_dir: Path | None, embedded: bool) -> None:
    """Relative paths to absolute ones (so a resumed run compares the same files), missing files named."""
    if recipe.data.path:
        path = (folder / recipe.data.path).resolve()
        if not path.exists():
            raise complaint("data.path", f"{path}: no such folder")
        recipe.data.path = str(path)
    if not recipe.builds_model and (folder / recipe.model).exists():
        recipe.model = str((folder / recipe.model).resolve())
    # --benchmarks-dir first; an embedded recipe's own files ship beside it (package data)
    bases = [Path(benchmarks_dir)] if benchmarks_dir else []
    bases += [RECIPES, folder] if embedded else [folder]
    resolved = []
    for i, name in enumerate(recipe.eval.benchmarks):
        found = [(b / name).resolve() for b in bases if (b / name).is_file()]
        if not found:
            path = (bases[0] / name).resolve()
            hint = "" if benchmarks_dir else " (point --benchmarks-dir at the folder that holds it)"
            raise complaint(f"eval.benchmarks[{i}]", f"{path}: no such file{hint}")
        resolved.append(str(found[0]))
    recipe.eval.benchmarks = resolved
