"""The trajectory layout every dataset format is turned into, and the pieces its adapters share.

    traces = adapt(batch)               # a format's adapter: one raw Arrow batch -> Traces
    traces.table                        # question, response, source, difficulty[, gold][, dataset_verdict]
    traces.dropped                      # Counter: why each unusable row or trace was left out

An adapter is a pure function of one record batch of its dataset's raw Parquet, so ``filter`` can stream
shards and run batches anywhere. A set with a list of traces per problem is exploded into one row per
trace (the list's order kept); a trace that cannot be used (null or blank text) is dropped and counted,
never scored. ``gold`` is the dataset's reference answer as text (numbers written as a person would:
``27.0`` -> ``27``, as ``eval`` reads benchmark golds); ``dataset_verdict`` is the set's own per-trace
correctness where it ships one (OpenR1-Math-220k's ``correctness_math_verify``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..filter import OUTPUT_SCHEMA as OPENTHOUGHTS3_LAYOUT
from ..io.errors import InputError
from ..io.shards import TypeCheck, is_float, is_integer, is_string

GOLD_FIELD = pa.field("gold", pa.string())
VERDICT_FIELD = pa.field("dataset_verdict", pa.bool_())
CANONICAL = pa.schema(
    [
        ("question", pa.string()),
        ("response", pa.string()),
        ("source", pa.string()),
        ("difficulty", pa.int64()),
    ]
)


def trajectory_layout(gold: bool, verdicts: bool = False) -> pa.Schema:
    """What ``filter`` writes: OpenThoughts3's trajectory layout, plus ``gold`` and ``dataset_verdict``
    where the set has them (a set without either gets exactly the OpenThoughts3 layout)."""
    return pa.schema([*OPENTHOUGHTS3_LAYOUT, *[GOLD_FIELD] * gold, *[VERDICT_FIELD] * verdicts])


def canonical_schema(gold: bool, verdicts: bool = False) -> pa.Schema:
    """An adapter's output: the canonical columns, then gold and verdicts where the set has them."""
    return pa.schema([*CANONICAL, *[GOLD_FIELD] * gold, *[VERDICT_FIELD] * verdicts])


@dataclass
class Traces:
    """One raw batch as trajectories: the usable ones in input order, and the reason for each drop."""

    table: pa.Table
    dropped: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)  # kept, but worth a line (e.g. a gold withheld)


@dataclass(frozen=True)
class Format:
    """A dataset layout: the columns it needs (name -> (expected type, check)), its adapter, and whether
    its trajectories carry a gold answer and the set's own verdicts."""

    name: str
    dataset: str  # what it mirrors, for messages and the card
    columns: dict[str, tuple[str, TypeCheck]]
    adapt: Callable[[pa.RecordBatch], Traces]
    gold: bool = False
    verdicts: bool = False
    optional: dict[str, tuple[str, TypeCheck]] = field(default_factory=dict)  # read (and checked) if there

    def schema(self) -> pa.Schema:
        return canonical_schema(self.gold, self.verdicts)

    def check(self, path: Path, schema: pa.Schema, known: dict[str, Format] | None = None) -> None:
        """One line naming the format, the file and the first missing or mistyped column (and, when the
        file's columns fit another known format, that one)."""
        present = {c: t for c, t in self.optional.items() if schema.get_field_index(c) >= 0}
        for column, (expected, ok) in {**self.columns, **present}.items():
            index = schema.get_field_index(column)
            if index >= 0 and ok(schema.field(index).type):
                continue
            if index < 0:
                what = f"has no column '{column}' ({expected}; columns found: {', '.join(schema.names)})"
            else:
                what = f"column '{column}' has type {schema.field(index).type}, expected {expected}"
            fits = [name for name, f in (known or {}).items() if name != self.name and f.fits(schema)]
            hint = f"; its columns fit --format {fits[0]}" if fits else ""
            raise InputError(f"{path}: --format {self.name} ({self.dataset}): {what}{hint}")

    def fits(self, schema: pa.Schema) -> bool:
        return all(
            schema.get_field_index(c) >= 0 and ok(schema.field(schema.get_field_index(c)).type)
            for c, (_, ok) in self.columns.items()
        )


def is_string_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and is_string(t.value_type)


def is_bool_list(t: pa.DataType) -> bool:
    return (pa.types.is_list(t) or pa.types.is_large_list(t)) and (
        pa.types.is_boolean(t.value_type) or pa.types.is_null(t.value_type)
    )


def is_number(t: pa.DataType) -> bool:
    return is_integer(t) or is_float(t)


def is_gold_type(t: pa.DataType) -> bool:
    return is_string(t) or is_number(t)


def gold_text(value: object) -> str | None:
    """A gold answer as text: ints as written, integral floats without ``.0``, other floats positional
    (``1e-05`` -> ``0.00001``), strings stripped; ``None`` for no gold (null, blank, NaN, a bool)."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (float, Decimal)):
        if not math.isfinite(value):
            return None
        if value == int(value):
            return str(int(value))
        return format(Decimal(repr(value)) if isinstance(value, float) else value, "f")
    if isinstance(value, str):
        return value.strip() or None
    return None


def gold_column(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """``gold_text`` over a column (strings only need the strip)."""
    return pa.array([gold_text(v) for v in values.to_pylist()], pa.string())


def difficulty_column(values: pa.Array | pa.ChunkedArray | None, rows: int) -> pa.Array:
    """The dataset's difficulty as int64: integers as they are, fractional levels floored (DeepMath's
    ``6.5`` is level 6, so buckets keep the 1-10 scale of OpenThoughts3); null where there is none."""
    if values is None:
        return pa.nulls(rows, pa.int64())
    if is_integer(values.type):
        return pc.cast(values, pa.int64())
    return pc.cast(pc.floor(pc.cast(values, pa.float64())), pa.int64())


def blank(values: pa.Array) -> pa.Array:
    """True where a string is null or only whitespace."""
    stripped = pc.utf8_trim_whitespace(values)
    return pc.fill_null(pc.equal(pc.utf8_length(stripped), 0), True)


def assemble(columns: dict[str, pa.Array], fmt_schema: pa.Schema, reasons: dict[str, pa.Array]) -> Traces:
    """Keep the rows no reason applies to; count each dropped row under its first reason (in order)."""
    rows = len(columns["response"])
    dropped: Counter = Counter()
    keep = pa.array(np.ones(rows, dtype=bool))
    for reason, mask in reasons.items():
        hit = pc.and_(keep, pc.fill_null(mask, False))
        if n := pc.sum(hit).as_py():
            dropped[reason] += n
        keep = pc.and_(keep, pc.invert(hit))
    table = pa.table({name: columns[name] for name in fmt_schema.names}, schema=fmt_schema)
    return Traces(table.filter(keep), dropped)


def explode(batch: pa.RecordBatch, column: str) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(parent row of each element, its position in its list, the elements) of a list column; a null
    or empty list contributes nothing (the caller counts its row)."""
    values = batch.column(column)
    lengths = pc.fill_null(pc.list_value_length(values), 0).to_numpy(zero_copy_only=False)
    parents = np.repeat(np.arange(len(values)), lengths)
    starts = np.cumsum(lengths) - lengths
    position = np.arange(len(parents)) - np.repeat(starts, lengths)
    return parents, position, pc.list_flatten(values)


def aligned_elements(
    batch: pa.RecordBatch, column: str, of: str, parents: np.ndarray, position: np.ndarray
) -> pa.Array:
    """For each element of list column ``of`` (``explode``'s parents/positions), the element at the same
    position of list column ``column``; null where that row's ``column`` list is null or has another
    length (its verdicts do not line up with its traces)."""
    lists = batch.column(column)
    own = pc.list_value_length(lists)
    lengths = pc.fill_null(own, 0).to_numpy(zero_copy_only=False)
    other = pc.fill_null(pc.list_value_length(batch.column(of)), 0).to_numpy(zero_copy_only=False)
    lined_up = (lengths == other) & ~pc.is_null(own).to_numpy(zero_copy_only=False)
    starts = np.cumsum(lengths) - lengths
    index = pa.array(starts[parents] + position, pa.int64(), mask=~lined_up[parents])
    return pc.take(pc.list_flatten(lists), index)
