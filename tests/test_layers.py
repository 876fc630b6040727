"""The house stays layered: a lower layer never imports a higher one.

    io <- answers <- stages (curate/) ;  train -> io ;  rollout -> io, answers, train ;  eval -> all below ;
    experiment (runs every command's code) -> all below ;  cli -> everything

A stage may read rollouts (``stats --base-rollouts`` uses ``rollout.reader``, which sits beside the writer
that defines the layout); the trainer never imports a stage, the answer rules never import a stage.

Each module's imports of offcurate (relative or absolute, at the top or inside a function) are read with
``ast``, so a lazy import inside a function counts too; the test names the file, the line and the layer
it reached.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# layer -> the layers it may import (besides itself); the package root (offcurate.__version__) is free
ALLOWED: dict[str, set[str]] = {
    "curate.io": set(),
    "curate.answers": {"curate.io"},
    "train": {"curate.io"},
    "rollout": {"curate.io", "curate.answers", "train"},
    "curate": {"curate.io", "curate.answers", "rollout", "data"},
    "data": {"curate.io"},  # the embedded sample and its generator
    "eval": {"curate.io", "curate.answers", "curate", "train", "rollout"},
    "experiment": {"curate.io", "curate.answers", "curate", "train", "rollout", "eval", "data"},
    "cli": {"curate.io", "curate.answers", "curate", "train", "rollout", "eval", "experiment", "data"},
}
FOLDERS = [
    "curate/io",
    "curate/answers",
    "curate/formats",
    "curate",
    "train",
    "rollout",
    "eval",
    "experiment",
    "data",
]


def layer_of(module: str) -> str:
    """``curate.answers.pool`` -> ``curate.answers``; ``curate.vote`` -> ``curate``; ``cli`` -> ``cli``."""
    for layer in sorted(ALLOWED, key=len, reverse=True):
        if module == layer or module.startswith(layer + "."):
            return layer
    return ""


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, module under offcurate) for every import of ours in ``path``."""
    module = module_name(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module and node.module.startswith("offcurate."):
                target = node.module.removeprefix("offcurate.")
            else:
                continue
            # `from . import figures` imports a module: count the names as modules when they are
            names = [f"{target}.{a.name}" if target else a.name for a in node.names]
            found += [(node.lineno, n if layer_of(n) else target) for n in names]
        elif isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name.removeprefix("offcurate."))
                for a in node.names
                if a.name.startswith("offcurate.")
            ]
    return found


def package_files() -> list[Path]:
    files = [ROOT / "cli.py"]
    for folder in FOLDERS:
        files += sorted((ROOT / folder).glob("*.py"))
    return files


def upward_imports(path: Path, root: Path = ROOT) -> list[str]:
    """Every import in ``path`` that reaches a layer its own layer may not import."""
    own = layer_of(module_name(path, root))
    assert own, f"{path} belongs to no layer: add its folder to ALLOWED"
    return [
        f"{path.relative_to(root)}:{line} imports {target} ({layer_of(target)})"
        for line, target in imported_modules(path, root)
        if layer_of(target) and layer_of(target) != own and layer_of(target) not in ALLOWED[own]
    ]


@pytest.mark.parametrize("path", package_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_imports_only_downward(path):
    wrong = upward_imports(path)
    assert not wrong, "a lower layer imports a higher one:\n" + "\n".join(wrong)


@pytest.mark.parametrize(
    ("file", "source", "reached"),
    [
        ("curate/io/shards.py", "from ..vote import run_vote\n", "curate"),
        ("curate/answers/extract.py", "def f():\n    from ...eval.compare import compare\n", "eval"),
        ("train/model.py", "from offcurate.curate.answers import pool\n", "curate.answers"),
        ("curate/vote.py", "from ..train import engine\n", "train"),
    ],
    ids=["io-imports-a-stage", "answers-lazily-imports-eval", "train-imports-answers", "stage-imports-train"],
)
def test_checker_catches_an_upward_import(tmp_path, file, source, reached):
    """The checker itself can fail: a planted upward import is reported with the layer it reached."""
    planted = tmp_path / file
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    (report,) = upward_imports(planted, tmp_path)
    assert report.startswith(f"{file}:") and report.endswith(f"({reached})")
