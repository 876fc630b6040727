"""Open an output folder the way a user would: every config its card declares, with `datasets` and polars."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import yaml


def card_configs(folder: Path) -> dict[str, str]:
    """config name -> data_files glob, read from the card's front matter with a real YAML parser."""
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n"), folder
    front = yaml.safe_load(text.split("---\n")[1])
    return {c["config_name"]: c["data_files"][0]["path"] for c in front["configs"]}


def open_every_config(folder: Path, cache: Path) -> dict[str, int]:
    """Rows per config through ``datasets.load_dataset`` (which reads the card itself) and the same through
    ``polars.scan_parquet`` of the config's glob; fails if the two disagree or a config is empty."""
    import datasets

    datasets.disable_progress_bars()
    rows = {}
    for name, glob in card_configs(folder).items():
        loaded = datasets.load_dataset(str(folder), name, split="train", cache_dir=str(cache))
        scanned = pl.scan_parquet(str(folder / glob)).select(pl.len()).collect().item()
        assert loaded.num_rows == scanned > 0, (folder, name, loaded.num_rows, scanned)
        rows[name] = scanned
    return rows
