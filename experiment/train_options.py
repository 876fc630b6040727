"""An arm's ``train`` options: checked against ``offcurate train``'s own signature, then handed to it.

    options = check_train_options({"bias": 0, "max_steps": 2}, "arms[1].train")   # typed, or RecipeError
    train_kwargs(options)       # keyword arguments of the `train` command function (run in this process)
    train_argv(options)         # the same as command-line flags (torchrun -m offcurate train ...)

The option names, types and flags are read off ``train.command.train`` (the function Typer turns into the
command), so a recipe accepts exactly what ``offcurate train`` accepts, spelled with underscores
(``max_steps``), and an option added to the command is accepted here without an edit. Value ranges are
``TrainConfig.validate``'s and ``ObjectiveConfig``'s, run before anything trains, and their message is
pinned to the recipe key it is about.
"""

from __future__ import annotations

import enum
import inspect
import re
import typing
from functools import cache
from pathlib import Path
from typing import Any

from ..curate.io.errors import OffcurateError
from ..train.command import train as train_command
from .schema import RecipeError, complaint, convert, describe, join, unknown_key

# what the experiment itself decides for every arm: where it reads, writes, starts from, and resuming
SET_BY_EXPERIMENT = {
    "input": "the training data is the recipe's mix (or the vote output)",
    "output": "each arm trains into RUN/train/NAME",
    "model": "every arm starts from the recipe's `model`",
    "resume": "an interrupted arm resumes by itself",
    "overwrite": "use `offcurate experiment --overwrite`",
    "stop_after": "an arm runs to its end; interrupt the experiment and run it again to continue",
}


@cache
def option_specs() -> dict[str, tuple[Any, Any, list[str]]]:
    """name -> (type, default, flags) of every option of ``offcurate train``."""
    hints = typing.get_type_hints(train_command, include_extras=True)
    specs = {}
    for name, param in inspect.signature(train_command).parameters.items():
        annotated = hints[name]
        kind, info = typing.get_args(annotated)[:2]
        flags = [d for d in (getattr(info, "param_decls", None) or ()) if d.startswith("--")]
        specs[name] = (kind, param.default, flags or [f"--{name.replace('_', '-')}"])
    return specs


def check_train_options(raw: Any, where: str) -> dict[str, Any]:
    """The recipe's ``train`` mapping at ``where``: known keys, right types (enums as their text)."""
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise complaint(where, f"expected a mapping of `offcurate train` options, got {describe(raw)}")
    specs = option_specs()
    options = {}
    for key, value in raw.items():
        path = join(where, str(key))
        if key in SET_BY_EXPERIMENT:
            raise complaint(path, f"set by the experiment ({SET_BY_EXPERIMENT[key]}); remove it")
        if key not in specs:
            raise unknown_key(where, key, sorted(k for k in specs if k not in SET_BY_EXPERIMENT))
        kind = specs[key][0]
        if isinstance(kind, type) and issubclass(kind, enum.Enum):
            choices = [m.value for m in kind]
            if value not in choices:
                raise complaint(path, f"must be one of {', '.join(choices)}, got {describe(value)}")
            options[key] = value
        else:
            options[key] = convert(kind, value, path)
    return options


def check_ranges(options: dict[str, Any], where_of: typing.Callable[[str], str]) -> None:
    """Run the trainer's own checks on the merged options of an arm; ``where_of(key)`` is the recipe path
    a complaint about ``key`` points at (the arm's key, or the shared ``train`` section's)."""
    from ..train.config import TrainConfig
    from ..train.objective import ObjectiveConfig

    kwargs = train_kwargs(options)
    objective_keys = ("loss", "bias", "eps", "beta", "shaping", "gamma")
    try:
        objective = ObjectiveConfig(*(_plain(kwargs.get(k, option_specs()[k][1])) for k in objective_keys))
        config = {
            k: v
            for k, v in kwargs.items()
            if k not in objective_keys and k in TrainConfig.__dataclass_fields__
        }
        config = {k: _plain(v) for k, v in config.items()}
        TrainConfig(input=Path("in"), output=Path("out"), model="m", objective=objective, **config).validate()
    except (ValueError, OffcurateError) as err:
        message = str(err)
        raise RecipeError(f"{where_of(_key_of(message))}: {message}") from None


def _key_of(message: str) -> str:
    """The option a trainer complaint is about: ``--loss sft ignores --bias`` -> bias; ``--lr must`` -> lr;
    ``eps must be in [0, 1)`` -> eps."""
    ignored = re.search(r"ignores --([a-z0-9-]+)", message)
    flag = ignored or re.search(r"--([a-z0-9-]+)", message)
    if flag:
        return flag.group(1).replace("-", "_")
    return message.split()[0]


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, enum.Enum) else value


def train_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of the ``train`` command function: enum options as their Enum members, the
    command's names (``no_shuffle``, ``no_gradient_checkpointing``) as they are."""
    specs = option_specs()
    kwargs = {}
    for key, value in options.items():
        kind = specs[key][0]
        is_enum = isinstance(kind, type) and issubclass(kind, enum.Enum)
        kwargs[key] = kind(value) if is_enum and value is not None else value
    return kwargs


def train_argv(options: dict[str, Any]) -> list[str]:
    """The options as ``offcurate train`` flags (a flag option only when true; None: left at its default)."""
    specs = option_specs()
    argv: list[str] = []
    for key, value in options.items():
        kind, _, flags = specs[key]
        if value is None:
            continue
        if kind is bool:
            if value:
                argv.append(flags[0])
            continue
        argv += [flags[0], str(_plain(value))]
    return argv
