"""Teacher-trace datasets beyond OpenThoughts3, each turned into the trajectory layout ``filter`` writes.

    offcurate filter --format openr1-math -i data/raw -o data/math
    raw = reader("deepmath")             # filter's reader of that layout (filter_shard.Reader)

| format | dataset | one row is | gold |
|---|---|---|---|
| ``openthoughts3`` | open-thoughts/OpenThoughts3-1.2M | a conversation (``curate/filter.py``) | none |
| ``openr1-math`` | open-r1/OpenR1-Math-220k | a problem, ``generations`` list | ``answer`` |
| ``openmathreasoning`` | nvidia/OpenMathReasoning | a solution | ``expected_answer`` (extracted only) |
| ``deepmath`` | zwhe99/DeepMath-103K | a problem, ``r1_solution_1..3`` | ``final_answer`` |
| ``columns`` | any, by ``--question-col`` etc. | a trace or a list of traces | ``--gold-col`` |

Each adapter is a pure function of one raw Arrow record batch (``canonical.Traces``); ``filter`` runs
every layout the same way: each shard read once, in parallel threads (``curate/filter.py``).
"""

from __future__ import annotations

from ..filter_ot3 import OpenThoughts3
from ..filter_shard import Reader
from ..io.errors import InputError
from .canonical import Format, Traces
from .columns import columns_format
from .deepmath import DEEPMATH
from .openmath import OPENMATH
from .openr1 import OPENR1

OPENTHOUGHTS3 = "openthoughts3"
KNOWN: dict[str, Format] = {f.name: f for f in (OPENR1, OPENMATH, DEEPMATH)}
NAMES = (OPENTHOUGHTS3, *KNOWN, "columns")

__all__ = ["KNOWN", "NAMES", "OPENTHOUGHTS3", "Format", "Traces", "columns_format", "get_format", "reader"]


def reader(
    name: str = OPENTHOUGHTS3,
    mapping: dict[str, str | None] | None = None,
    domains: tuple[str, ...] = ("math",),
) -> Reader:
    """``filter``'s reader of ``--format name``: OpenThoughts3 keeping ``domains``, or ``get_format``'s."""
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    if name == OPENTHOUGHTS3 and not mapping:
        return OpenThoughts3(frozenset(domains))
    if tuple(domains) != ("math",):
        raise InputError(f"--domain applies to --format openthoughts3; {name} is all math")
    return get_format(name, mapping)


def get_format(name: str, mapping: dict[str, str | None] | None = None) -> Format:
    """The format called ``name`` (``columns`` built from ``mapping``: question, response, gold,
    difficulty, source); a one-line error naming the formats otherwise."""
    mapping = {k: v for k, v in (mapping or {}).items() if v}
    if name == "columns":
        return columns_format(
            **{k: mapping.get(k) for k in ("question", "response", "gold", "difficulty", "source")}
        )
    if mapping:
        flags = ", ".join(f"--{k}-col" for k in mapping)
        raise InputError(f"{flags}: only --format columns takes a column mapping (got --format {name})")
    if name not in KNOWN:
        raise InputError(f"--format must be one of {', '.join(NAMES)}, got {name!r}")
    return KNOWN[name]
