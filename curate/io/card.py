"""Dataset cards (README.md with YAML front matter) for every output folder.

The card says what the folder holds, which command and version produced it, and lists the features, so
``datasets.load_dataset(folder)`` and the Hub viewer read the shards as they are.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pyarrow as pa
from huggingface_hub import DatasetCardData

from ... import __version__


def _feature(field_type: pa.DataType) -> dict:
    if pa.types.is_struct(field_type):
        return {"struct": [{"name": f.name, **_feature(f.type)} for f in field_type]}
    if pa.types.is_list(field_type) or pa.types.is_large_list(field_type):
        inner = _feature(field_type.value_type)
        return {"list": inner["struct"]} if "struct" in inner else {"sequence": inner["dtype"]}
    names = {
        pa.string(): "string",
        pa.large_string(): "large_string",
        pa.bool_(): "bool",
        pa.float64(): "float64",
        pa.float32(): "float32",
    }
    return {"dtype": names.get(field_type, str(field_type))}


def write_card(folder: Path, title: str, body: str, configs: dict[str, tuple[str, pa.Schema]]) -> None:
    """Write ``folder/README.md``; ``configs`` maps config name -> (data_files glob, schema).

    The front matter goes through huggingface_hub's serializer (PyYAML), never string formatting: an
    unquoted ``path: *.parquet`` reads as a YAML alias and ``datasets.load_dataset`` cannot open the folder.
    """
    front = DatasetCardData(
        configs=[
            {"config_name": name, "data_files": [{"split": "train", "path": glob}]}
            for name, (glob, _) in configs.items()
        ],
        dataset_info=[
            {"config_name": name, "features": [{"name": f.name, **_feature(f.type)} for f in schema]}
            for name, (_, schema) in configs.items()
        ],
    )
    command = "offcurate " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    text = "\n".join(
        [
            "---",
            front.to_yaml(),
            "---",
            f"# {title}",
            "",
            body.strip(),
            "",
            f"Produced by offcurate {__version__}: `{command}`",
            "",
        ]
    )
    (folder / "README.md").write_text(text)


def write_vote_layout_card(
    folder: Path,
    title: str,
    body: str,
    trajectories: pa.Schema,
    questions: pa.Schema,
    extra: dict[str, tuple[str, pa.Schema]] | None = None,
) -> None:
    """The card of a folder in the vote layout (``vote`` output, ``sample`` mix): two configs, plus
    ``extra`` ones (the mix's ``buckets``)."""
    configs = {
        "trajectories": ("trajectories/*.parquet", trajectories),
        "questions": ("questions/*.parquet", questions),
    }
    write_card(folder, title, body, {**configs, **(extra or {})})
