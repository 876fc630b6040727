"""``download --dataset REPO --config C [--split S]``: the files of one config of the dataset card, pinned,
through the real huggingface_hub client against the local Hub stand-in (which serves the card's YAML as
``cardData``, as the Hub does)."""

from __future__ import annotations

import json
from pathlib import Path

import hub_standin as hs
import pytest
from gold_builders import Problem, openr1_table
from huggingface_hub import hf_hub_download
from test_download import go_offline, hf_home, local_shards  # noqa: F401 (hf_home: autouse fixture)
from typer.testing import CliRunner

from offcurate.cli import app
from offcurate.curate.download import download
from offcurate.curate.filter import run_filter
from offcurate.curate.io.errors import InputError, OffcurateError

REPO = "open-r1/OpenR1-Math-220k"
# the configs of the card at 075afe03dbbc6e7b8bd35af1e4259957f0beb07d
CARD = b"""---
license: apache-2.0
configs:
- config_name: all
  data_files:
  - split: default
    path: all/default-*
  - split: extended
    path: all/extended-*
- config_name: default
  data_files:
  - split: train
    path: data/train-*
- config_name: extended
  data_files:
  - split: train
    path: extended/train-*
---
# OpenR1-Math-220k stand-in
"""


def _shard(seed: int) -> bytes:
    problems = [
        Problem(f"Problem {seed}.{i}: what is {i}+{seed}?", str(i + seed), [str(i + seed)] * 2)
        for i in range(3)
    ]
    return hs.parquet_bytes(openr1_table(problems))


FILES = {
    "README.md": CARD,
    "data/train-00000-of-00002.parquet": _shard(0),
    "data/train-00001-of-00002.parquet": _shard(1),
    "extended/train-00000-of-00001.parquet": _shard(2),
    "all/default-00000-of-00001.parquet": _shard(3),
    "all/extended-00000-of-00001.parquet": _shard(4),
}


@pytest.fixture
def hub():
    with hs.HubStandin([hs.StandinRepo(REPO, dict(FILES))]) as server:
        yield server


@pytest.mark.parametrize(
    "config, split, expected",
    [
        ("default", None, ["data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]),
        ("extended", None, ["extended/train-00000-of-00001.parquet"]),
        ("all", None, ["all/default-00000-of-00001.parquet", "all/extended-00000-of-00001.parquet"]),
        ("all", "extended", ["all/extended-00000-of-00001.parquet"]),
    ],
    ids=["default", "extended", "all", "all_extended_split"],
)
def test_only_the_files_of_the_config_are_fetched(hub, tmp_path: Path, config, split, expected):
    out = tmp_path / "raw"
    report = download(out, repo_id=REPO, config=config, split=split, endpoint=hub.url)
    assert local_shards(out) == expected
    assert all((out / p).read_bytes() == FILES[p] for p in expected)
    assert hub.downloads() == len(expected)  # nothing of the other configs
    meta = json.loads((out / "download.json").read_text())
    assert (meta["config"], meta["split"], meta["sha"]) == (config, split, hub.repos[REPO].sha)
    assert report.counts["config"] == config and f"config `{config}`" in (out / "README.md").read_text()


def test_a_downloaded_config_filters_as_openr1_math(hub, tmp_path: Path):
    download(tmp_path / "raw", repo_id=REPO, config="default", endpoint=hub.url)
    report = run_filter(tmp_path / "raw", tmp_path / "math", fmt="openr1-math")
    assert (report.counts["kept trajectories"], report.counts["questions with a gold"]) == (12, 6)


@pytest.mark.parametrize(
    "config, split, message",
    [
        ("train", None, "no config 'train' in the dataset card (configs: all, default, extended)"),
        ("all", "train", "config 'all' has no split 'train' (splits: default, extended)"),
        (None, "train", "--split selects a split of a config: give --config too"),
    ],
    ids=["unknown_config", "unknown_split", "split_without_config"],
)
def test_a_config_or_split_the_card_lacks_is_one_line(hub, tmp_path: Path, config, split, message):
    with pytest.raises(OffcurateError) as err:
        download(tmp_path / "raw", repo_id=REPO, config=config, split=split, endpoint=hub.url)
    assert message in str(err.value) and "\n" not in str(err.value)
    assert hub.downloads() == 0 and not list(tmp_path.glob("raw/**/*.parquet"))


def test_a_repo_without_configs_in_its_card(tmp_path: Path):
    files = {"data/train-00000-of-00001.parquet": FILES["data/train-00000-of-00002.parquet"]}
    with (
        hs.HubStandin([hs.StandinRepo(REPO, files)]) as hub,
        pytest.raises(InputError, match="configs: none"),
    ):
        download(tmp_path / "raw", repo_id=REPO, config="default", endpoint=hub.url)


def test_offline_the_config_is_read_from_the_cached_card(hub, tmp_path: Path, monkeypatch):
    for path in FILES:  # what `hf download` would have left in HF_HOME
        hf_hub_download(REPO, path, repo_type="dataset", endpoint=hub.url)
    go_offline(monkeypatch)
    before = hub.count()
    download(tmp_path / "raw", repo_id=REPO, config="extended", endpoint=hub.url)
    assert hub.count() == before
    assert local_shards(tmp_path / "raw") == ["extended/train-00000-of-00001.parquet"]


def test_cli_dataset_and_config(hub, tmp_path: Path):
    out = tmp_path / "raw"
    args = ["download", "--dataset", REPO, "--config", "extended", "--endpoint", hub.url, "-o", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert local_shards(out) == ["extended/train-00000-of-00001.parquet"]
