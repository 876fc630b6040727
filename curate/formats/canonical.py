"""The trajectory layout every dataset format is turned into, and the pieces its adapters share.

    fmt = get_format("openr1-math")     # a Format: a reader of ``filter``'s engine (``filter_shard.Reader``)
    columns = fmt.check(path, schema)   # the columns to read from this shard, or a one-line error
    kept, reasons = fmt.read(batch)     # question, response, source, difficulty[, gold][, dataset_verdict]

An adapter is a pure function of one record batch of its dataset's raw Parquet (``Traces``), so
``filter`` reads each shard once, in parallel threads, as it reads OpenThoughts3. A set with a list of
traces per problem is exploded into one row per trace (the list's order kept); a trace that cannot be
used (null or blank text, blank as ``str.strip`` sees it, as for OpenThoughts3) is dropped and counted by
reason, never scored. ``gold`` is the dataset's reference answer as text (numbers written as a person
would: ``27.0`` -> ``27``, as ``eval`` reads benchmark golds); ``dataset_verdict`` is the set's own
per-trace correctness where it ships one (OpenR1-Math-220k's ``correctness_math_verify``). A set without
either writes exactly the OpenThoughts3 layout.
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

from ..filter_shard import CANONICAL, bools, output_schema
from ..io.errors import InputError
from ..io.shards import TypeCheck, is_float, is_integer, is_string

GOLD_FIELD = pa.field("gold", pa.string())
VERDICT_FIELD = pa.field("dataset_verdict", pa.bool_())


def extra_fields(gold: bool, verdicts: bool = False) -> tuple[pa.Field, ...]:
    return (*[GOLD_FIELD] * gold, *[VERDICT_FIELD] * verdicts)


def trajectory_layout(gold: bool, verdicts: bool = False) -> pa.Schema:
    """What ``filter`` writes: OpenThoughts3's trajectory layout, plus ``gold`` and ``dataset_verdict``
    where the set has them (a set without either gets exactly the OpenThoughts3 layout)."""
    return output_schema(extra_fields(gold, verdicts))


@dataclass
class Traces:
    """One raw batch as trajectories: the usable ones in input order (``CANONICAL`` + the format's extra
    columns), and a reason for each trace or row left out (null for the others)."""

    batch: pa.RecordBatch
    reasons: pa.Array


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
    count_notes: Callable[[pa.RecordBatch], Counter] | None = None  # kept rows worth a line

    @property
    def extra(self) -> tuple[pa.Field, ...]:
        return extra_fields(self.gold, self.verdicts)

    def read(self, batch: pa.RecordBatch) -> tuple[pa.RecordBatch, pa.Array]:
        traces = self.adapt(batch)
        return traces.batch, traces.reasons

    def notes(self, batch: pa.RecordBatch) -> Counter:
        return self.count_notes(batch) if self.count_notes else Counter()

    def check(self, path: Path, schema: pa.Schema) -> list[str]:
        """The columns to read from ``path``; one line naming the format, the file and the first missing
        or mistyped column otherwise (and, when the file's columns fit another known format, that one)."""
        from . import KNOWN

        present = {c: t for c, t in self.optional.items() if schema.get_field_index(c) >= 0}
        for column, (expected, ok) in {**self.columns, **present}.items():
            index = schema.get_field_index(column)
            if index >= 0 and ok(schema.field(index).type):
                continue
            if index < 0:
                what = f"has no column '{column}' ({expected}; columns found: {', '.join(schema.names)})"
            else:
                what = f"column '{column}' has type {schema.field(index).type}, expected {expected}"
            fits = [name for name, f in KNOWN.items() if name != self.name and f.fits(schema)]
            hint = f"; its columns fit --format {fits[0]}" if fits else ""
            raise InputError(f"{path}: --format {self.name} ({self.dataset}): {what}{hint}")
        return [*self.columns, *present]

    def fits(self, schema: pa.Schema) -> bool:
        return all(
            schema.get_field_index(c) >= 0 and ok(schema.field(schema.get_field_index(c)).type)
            for c, (_, ok) in self.columns.items()
        )

    def card(self) -> tuple[str, str]:
        """The output's dataset card: title and text."""
        text = (
            f"One row per teacher trajectory of {self.dataset} (`--format {self.name}`). `question_id` = "
            "first 16 hex of sha256 of the whitespace-collapsed question; `sample_idx` ranks a question's "
            "traces by response content; `finished` is false for a trace cut inside `<think>`."
        )
        if self.gold:
            text += " `gold` is the dataset's reference answer (null where it has none)."
        if self.verdicts:
            text += (
                " `dataset_verdict` is the dataset's own per-trace correctness (`correctness_math_verify`)."
            )
        return f"Math trajectories from {self.dataset} (offcurate filter)", text

    def nothing_kept(self) -> str:
        return f"no trace of --format {self.name} could be used"


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
    ``6.5`` is level 6, so buckets keep the 1-10 scale of OpenThoughts3); null where there is none (NaN,
    an infinity, or a level no int64 holds, too)."""
    if values is None:
        return pa.nulls(rows, pa.int64())
    if is_integer(values.type):
        return pc.cast(values, pa.int64())
    levels = pc.floor(pc.cast(values, pa.float64()))
    usable = pc.and_(pc.is_finite(levels), pc.less(pc.abs(levels), 2.0**62))
    return pc.cast(pc.if_else(usable, levels, pa.scalar(None, pa.float64())), pa.int64())


def assemble(
    columns: dict[str, pa.Array],
    extra: tuple[pa.Field, ...],
    reasons: dict[str, np.ndarray | pa.Array],
    row_reasons: pa.Array | None = None,
) -> Traces:
    """Keep the traces no reason applies to (each dropped one counted under its first reason, in order);
    ``row_reasons``: one per input row that gave no trace at all (null for the others)."""
    schema = pa.schema([*CANONICAL, *extra])
    code = np.zeros(len(columns["response"]), dtype=np.int32)
    for n, mask in enumerate(reasons.values(), start=1):
        hit = bools(mask) if isinstance(mask, pa.Array) else mask
        code[(code == 0) & hit] = n
    keep = pa.array(code == 0)
    arrays = [_typed(columns[f.name], f.type) for f in schema]
    batch = pa.RecordBatch.from_arrays(arrays, schema=schema).filter(keep)
    named = pa.array([None, *reasons], pa.string()).take(pa.array(code))
    if row_reasons is not None:
        named = pa.concat_arrays([named, row_reasons])
    return Traces(batch, named)


def _typed(values: pa.Array, type_: pa.DataType) -> pa.Array:
    return values if values.type == type_ else values.cast(type_)


def list_lengths(values: pa.Array) -> np.ndarray:
    """Each list's length, 0 for a null list."""
    return pc.fill_null(pc.list_value_length(values), 0).to_numpy()


def empty_lists(values: pa.Array, reason: str) -> pa.Array:
    """``reason`` for each row whose list is null or empty, null for the others."""
    return pa.array(np.where(list_lengths(values) == 0, reason, None), pa.string())


def explode(batch: pa.RecordBatch, column: str) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(parent row of each element, its position in its list, the elements) of a list column; a null
    or empty list contributes nothing (the caller counts its row)."""
    values = batch.column(column)
    lengths = list_lengths(values)
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
    lengths = list_lengths(lists)
    lined_up = (lengths == list_lengths(batch.column(of))) & bools(lists.is_valid())
    starts = np.cumsum(lengths) - lengths
    index = pa.array(starts[parents] + position, pa.int64(), mask=~lined_up[parents])
    return pc.take(pc.list_flatten(lists), index)
