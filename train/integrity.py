"""Is a model folder or checkpoint whole? Cheap checks of the files a load would read, naming the bad one.

    weights_problem(Path("runs/r1/final"))                  # None, or "model.safetensors is truncated ..."
    dcp_problem(Path("runs/r1/checkpoint-000100/sharded"))  # None, or "sharded/.metadata is missing"

A truncated ``model.safetensors`` or ``.distcp`` shard (a full disk, a copy cut short) otherwise fails deep
inside safetensors or torch.distributed.checkpoint with a traceback that names neither the file nor the
cure. These read headers and sizes only (no tensor data), so ``--resume`` can test every checkpoint and
fall back to the newest intact one, and loading a model says which file is damaged.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (header unreadable, data cut short), or None."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path.name} is truncated ({size} bytes, no header)"
            (n,) = struct.unpack("<Q", head)
            if 8 + n > size:
                return f"{path.name} is truncated ({size} bytes, its header alone needs {8 + n})"
            header = json.loads(f.read(n))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{path.name} is unreadable ({err})"
    if not isinstance(header, dict):
        return f"{path.name} has a damaged header"
    ends = [v["data_offsets"][1] for k, v in header.items() if k != "__metadata__" and isinstance(v, dict)]
    need = 8 + n + max(ends, default=0)
    if size < need:
        return f"{path.name} is truncated ({size} of {need} bytes)"
    return None


def weights_problem(folder: str | Path) -> str | None:
    """The first damaged ``*.safetensors`` of a local model folder, or None (a Hub id: None)."""
    folder = Path(str(folder))
    if not folder.is_dir():
        return None
    for path in sorted(folder.glob("*.safetensors")):
        problem = safetensors_problem(path)
        if problem:
            return problem
    return None


def json_problem(path: Path) -> str | None:
    """Why ``path`` is not a readable JSON object, or None."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, UnicodeDecodeError, ValueError):
        return f"{path.name} is {'empty' if path.stat().st_size == 0 else 'not readable JSON'}"
    return None if isinstance(data, dict) else f"{path.name} is not a JSON object"


def dcp_problem(sharded: Path) -> str | None:
    """Why a ``torch.distributed.checkpoint`` folder cannot be loaded: its ``.metadata`` missing or
    unreadable, or a shard missing or shorter than the bytes the metadata places in it; else None."""
    from torch.distributed.checkpoint import FileSystemReader

    where = sharded.name
    if not (sharded / ".metadata").is_file():
        return f"{where}/.metadata is missing"
    try:
        metadata = FileSystemReader(str(sharded)).read_metadata()
    except Exception as err:  # noqa: BLE001 - a damaged pickle can raise anything
        return f"{where}/.metadata is unreadable ({type(err).__name__})"
    need: dict[str, int] = {}
    for info in (metadata.storage_data or {}).values():
        end = int(info.offset) + int(info.length)
        need[info.relative_path] = max(need.get(info.relative_path, 0), end)
    for name, end in sorted(need.items()):
        path = sharded / name
        if not path.is_file():
            return f"{where}/{name} is missing"
        size = path.stat().st_size
        if size < end:
            return f"{where}/{name} is truncated ({size} of {end} bytes)"
    return None
