"""YAML read into typed dataclasses, every bad key or value named in one line with its path.

    raw = read_yaml(Path("recipe.yaml"))                  # duplicate keys refused, 1e-6 read as a number
    recipe = build(Recipe, raw)                            # RecipeError("arms[1].name: missing (required)")

A dataclass field's type decides what a value may be (``int``, ``float``, ``str``, ``bool``, ``list[X]``,
``dict[str, X]``, ``X | None``, a nested dataclass, ``Any``); ``field(metadata={"check": f})`` adds a
range check, ``f(value)`` returning the complaint or None. A field without a default is required. Why not
pydantic: a few dozen lines give the one-line messages (path, did-you-mean) the CLI needs, without a
dependency the curation side would have to install.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from pathlib import Path
from typing import Any

import yaml

from ..curate.io.errors import OffcurateError


class RecipeError(OffcurateError):
    """A recipe that cannot run: the message names the file, the YAML path and what is wrong."""


def complaint(where: str, message: str) -> RecipeError:
    return RecipeError(f"{where}: {message}")


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML keeps the last silently) and reads 1e-6 as a number
    (YAML 1.1 wants a dot: 1.0e-6), as a user writing a learning rate expects."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                mark = key_node.start_mark
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (line {mark.line + 1})", mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_FLOAT = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)"
    r"|\.[0-9_]+(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))


def read_yaml(path: Path, label: str | None = None) -> Any:
    """The document in ``path``; a syntax error is one line with the file, line and column."""
    label = label or str(path)
    try:
        text = Path(path).read_text()
    except OSError as err:
        raise RecipeError(f"{label}: cannot read ({err.strerror or err})") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise RecipeError(f"{label}{at}: not valid YAML: {problem}") from None


def join(where: str, key: str | int) -> str:
    """``arms`` + 1 -> ``arms[1]``; ``arms[1]`` + ``train`` -> ``arms[1].train``."""
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def unknown_key(where: str, key: Any, known: list[str]) -> RecipeError:
    """``unknown key 'bais' (did you mean 'bias'?)``, or the keys there are when none is close."""
    spelled = str(key).replace("-", "_")
    close = difflib.get_close_matches(spelled, known, n=1, cutoff=0.6)
    close = close or [k for k in known if spelled.startswith(k) or k.startswith(spelled)][:1]
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(known)}"
    return complaint(join(where, str(key)), f"unknown key ({hint})")


def describe(value: Any) -> str:
    """What a wrong value is, for the message: ``'high' (text)``, ``true (a boolean)``."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "text", list: "a list"}
    kind = "a mapping" if isinstance(value, dict) else kinds.get(type(value), type(value).__name__)
    shown = "null" if value is None else repr(value) if not isinstance(value, (dict, list)) else ""
    shown = shown if len(shown) <= 40 else shown[:37] + "..."
    return f"{shown} ({kind})" if shown else kind


def build(cls: type, raw: Any, where: str = "") -> Any:
    """An instance of dataclass ``cls`` from the mapping ``raw`` found at YAML path ``where``."""
    if not isinstance(raw, dict):
        raise complaint(where or "recipe", f"expected a mapping of keys, got {describe(raw)}")
    hints = typing.get_type_hints(cls)
    known = [f.name for f in fields(cls)]
    for key in raw:
        if key not in known:
            raise unknown_key(where, key, known)
    values = {}
    for f in fields(cls):
        path = join(where, f.name)
        if f.name not in raw:
            if f.default is MISSING and f.default_factory is MISSING:
                raise complaint(path, "missing (required)")
            continue
        value = convert(hints[f.name], raw[f.name], path)
        check = f.metadata.get("check")
        problem = check(value) if check and value is not None else None
        if problem:
            raise complaint(path, f"{problem}, got {describe(raw[f.name])}")
        values[f.name] = value
    return cls(**values)


def convert(kind: Any, value: Any, where: str) -> Any:
    """``value`` as type ``kind`` (ints widen to floats; nothing else is coerced), or a RecipeError."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return convert(inner, value, where)
    if is_dataclass(kind):
        return build(kind, value, where)
    if origin is list:
        if not isinstance(value, list):
            raise complaint(where, f"expected a list, got {describe(value)}")
        return [convert(args[0], v, join(where, i)) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise complaint(where, f"expected a mapping, got {describe(value)}")
        return {str(k): convert(args[1], v, join(where, str(k))) for k, v in value.items()}
    return scalar(kind, value, where)


def scalar(kind: type, value: Any, label: str) -> Any:
    """A bool, int, float, str or Path value checked against ``kind``."""
    if kind is bool and isinstance(value, bool):
        return value
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind in (str, Path) and isinstance(value, str):
        return value
    names = {bool: "true or false", int: "an integer", float: "a number", str: "text", Path: "a path"}
    raise complaint(label, f"expected {names.get(kind, kind.__name__)}, got {describe(value)}")


def at_least(low: float) -> typing.Callable[[Any], str | None]:
    return lambda v: None if v >= low else f"must be >= {low:g}"


def above(low: float) -> typing.Callable[[Any], str | None]:
    return lambda v: None if v > low else f"must be > {low:g}"


def within(low: float, high: float) -> typing.Callable[[Any], str | None]:
    """``low < v <= high``: a share such as top_p."""
    return lambda v: None if low < v <= high else f"must be in ({low:g}, {high:g}]"


def one_of(*choices: str) -> typing.Callable[[Any], str | None]:
    return lambda v: None if v in choices else f"must be one of {', '.join(choices)}"
