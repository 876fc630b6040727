"""``offcurate download`` through the real huggingface_hub client against a local stand-in of the Hub.

No test reaches the network: the Hub is ``hub_standin.HubStandin`` on 127.0.0.1, and every huggingface_hub
location (HF_HOME, the hub cache, the token file) points into the test's temporary folder.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants, hf_hub_download

import offcurate.data
from offcurate.curate import download as download_module
from offcurate.curate.download import download, write_sample
from offcurate.curate.io.errors import InputError, OffcurateError, OutputExistsError
from offcurate.curate.io.shards import list_shards

sys.path.insert(0, str(Path(__file__).parent))
import hub_standin as hs  # noqa: E402

REPO = hs.DEFAULT_REPO_ID


@pytest.fixture(autouse=True)
def hf_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HF_HOME, no token, online (huggingface_hub read these at import: patch its constants too)."""
    home = tmp_path / "hf-home"
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_HUB_CACHE", str(home / "hub"))
    for name, value in {
        "HF_HOME": home,
        "HF_HUB_CACHE": home / "hub",
        "HF_ASSETS_CACHE": home / "assets",
        "HF_XET_CACHE": home / "xet",
        "HF_TOKEN_PATH": home / "token",
        "HF_STORED_TOKENS_PATH": home / "stored_tokens",
    }.items():
        monkeypatch.setattr(constants, name, str(value))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    return home


@pytest.fixture
def hub():
    with hs.HubStandin() as server:
        yield server


def go_offline(monkeypatch: pytest.MonkeyPatch, how: str = "constants") -> None:
    """``constants``: HF_HUB_OFFLINE set before huggingface_hub was imported; ``env``: set only afterwards."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    if how == "constants":
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def shard_paths(hub: hs.HubStandin, repo_id: str = REPO) -> list[str]:
    return sorted(path for path in hub.repos[repo_id].files if path.endswith(".parquet"))


def manifest(folder: Path) -> dict:
    return json.loads((folder / "download.json").read_text())


def local_shards(folder: Path) -> list[str]:
    return [p.relative_to(folder).as_posix() for p in list_shards(folder)]


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- a real download --------------------------------------------------------------------------------------


def test_download_lands_every_shard_pinned_to_the_resolved_commit(hub: hs.HubStandin, tmp_path: Path):
    out = tmp_path / "raw"
    repo = hub.repos[REPO]

    report = download(out, endpoint=hub.url)

    paths = shard_paths(hub)
    assert local_shards(out) == paths  # repo paths kept, nothing but the shards looks like data
    for path in paths:
        assert (out / path).read_bytes() == repo.files[path]
    meta = manifest(out)
    assert (meta["repo_id"], meta["revision"], meta["sha"], meta["complete"]) == (
        REPO,
        "main",
        repo.sha,
        True,
    )
    assert meta["files"] == [{"path": p, "size": len(repo.files[p]), "commit": repo.sha} for p in paths]
    assert hub.resolve_paths() and all(f"/resolve/{repo.sha}/" in p for p in hub.resolve_paths())
    assert hub.count(contains="README.md") == 0  # only the shards are fetched
    card = (out / "README.md").read_text()
    assert "path: data/*.parquet" in card and "name: conversations" in card and repo.sha in card
    assert report.counts["commit"] == repo.sha
    assert (report.counts["downloaded"], report.counts["skipped (already here)"]) == (3, 0)
    assert report.counts["rows"] == sum(pq.read_metadata(out / p).num_rows for p in paths)


def test_a_commit_sha_as_revision_is_used_as_is(hub: hs.HubStandin, tmp_path: Path):
    sha = hub.repos[REPO].sha

    download(tmp_path / "raw", revision=sha, endpoint=hub.url, max_shards=1)

    assert manifest(tmp_path / "raw")["sha"] == sha
    assert hub.count("GET", contains=f"/revision/{sha}") == 1


@pytest.mark.parametrize(("max_shards", "expected"), [(1, 1), (2, 2), (3, 3), (50, 3), (None, 3)])
def test_max_shards_takes_the_first_shards_by_name(
    hub: hs.HubStandin, tmp_path: Path, max_shards: int | None, expected: int
):
    out = tmp_path / "raw"

    report = download(out, endpoint=hub.url, max_shards=max_shards)

    assert local_shards(out) == shard_paths(hub)[:expected]
    assert [f["path"] for f in manifest(out)["files"]] == shard_paths(hub)[:expected]
    assert hub.downloads() == expected
    assert (report.counts["shards"], report.counts["shards in repo"]) == (expected, 3)


def test_max_shards_below_one_is_refused(hub: hs.HubStandin, tmp_path: Path):
    with pytest.raises(OffcurateError, match="at least 1"):
        download(tmp_path / "raw", endpoint=hub.url, max_shards=0)


# --- resuming ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bookkeeping", ["kept", "lost"])
def test_a_second_run_downloads_nothing(hub: hs.HubStandin, tmp_path: Path, bookkeeping: str):
    out = tmp_path / "raw"
    download(out, endpoint=hub.url)
    if (
        bookkeeping == "lost"
    ):  # e.g. the folder was copied without huggingface_hub's .cache: no HEAD, no hashing
        shutil.rmtree(out / ".cache")
    files_before = {p: (out / p).stat().st_mtime_ns for p in shard_paths(hub)}
    requests_before = hub.count(contains="/resolve/")

    report = download(out, endpoint=hub.url)

    assert hub.count(contains="/resolve/") == requests_before  # not even a HEAD
    assert {p: (out / p).stat().st_mtime_ns for p in shard_paths(hub)} == files_before
    assert (report.counts["downloaded"], report.counts["skipped (already here)"]) == (0, 3)


@pytest.mark.parametrize(("damage", "refetched"), [("empty", 1), ("half", 1), ("missing", 0)])
def test_a_partial_or_missing_shard_is_fetched_again(
    hub: hs.HubStandin, tmp_path: Path, damage: str, refetched: int
):
    out = tmp_path / "raw"
    download(out, endpoint=hub.url)
    damaged, *intact = shard_paths(hub)[1:2] + shard_paths(hub)[:1] + shard_paths(hub)[2:]
    if damage == "missing":
        (out / damaged).unlink()
    else:
        hs.truncate(out / damaged, 0 if damage == "empty" else len(hub.repos[REPO].files[damaged]) // 2)

    report = download(out, endpoint=hub.url)

    assert (out / damaged).read_bytes() == hub.repos[REPO].files[damaged]
    assert hub.downloads(damaged) == 2
    assert all(hub.downloads(path) == 1 for path in intact)
    assert report.counts["downloaded"] == 1
    assert report.counts["re-fetched (partial)"] == refetched
    assert report.counts["skipped (already here)"] == 2


def test_an_interrupted_run_goes_on_where_it_stopped(hub: hs.HubStandin, tmp_path: Path):
    out = tmp_path / "raw"
    first, second, third = shard_paths(hub)
    hub.fail[third] = 403

    with pytest.raises(OffcurateError, match=f"HTTP 403 while downloading {third}") as failure:
        download(out, endpoint=hub.url)
    assert "HF_TOKEN" in str(failure.value) and "\n" not in str(failure.value)
    assert local_shards(out) == [first, second]
    assert manifest(out)["complete"] is False

    hub.fail.clear()
    report = download(out, endpoint=hub.url)

    assert local_shards(out) == [first, second, third]
    assert [hub.downloads(p) for p in (first, second, third)] == [1, 1, 1]
    assert manifest(out)["complete"] is True
    assert (report.counts["downloaded"], report.counts["skipped (already here)"]) == (1, 2)


# --- errors -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("unknown repo", "dataset repository 'nobody/missing' not found"),
        ("unknown revision", "revision 'v9.9' not found in dataset"),
        ("hub unreachable", "cannot reach the Hub at http://127.0.0.1:.*HF_HUB_OFFLINE=1"),
        ("api forbidden", "answered HTTP 403 while listing the repository"),
        ("bad repo id", "invalid --repo-id"),
    ],
)
def test_hub_failures_become_one_line_errors(hub: hs.HubStandin, tmp_path: Path, case: str, message: str):
    out = tmp_path / "raw"
    kwargs: dict = {"endpoint": hub.url}
    if case == "unknown repo":
        kwargs["repo_id"] = "nobody/missing"
    elif case == "unknown revision":
        kwargs["revision"] = "v9.9"
    elif case == "hub unreachable":
        kwargs["endpoint"] = closed_port_url()
    elif case == "api forbidden":
        hub.fail["/api/"] = 403
    elif case == "bad repo id":
        kwargs["repo_id"] = "not a//repo"

    with pytest.raises(OffcurateError, match=message) as failure:
        download(out, **kwargs)

    assert "\n" not in str(failure.value)
    assert not out.exists() or not list(out.rglob("*.parquet"))


def test_a_private_repo_without_a_token_says_how_to_log_in(tmp_path: Path):
    with hs.HubStandin(token="hf_secret") as hub, pytest.raises(OffcurateError, match="not found") as failure:
        download(tmp_path / "raw", endpoint=hub.url)
    assert "HF_TOKEN" in str(failure.value)


@pytest.mark.parametrize("given", ["HF_TOKEN", "argument"])
def test_a_token_from_hf_token_or_the_argument_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, given: str
):
    if given == "HF_TOKEN":
        monkeypatch.setenv("HF_TOKEN", "hf_secret")
    with hs.HubStandin(token="hf_secret") as hub:
        download(tmp_path / "raw", endpoint=hub.url, token="hf_secret" if given == "argument" else None)
        assert local_shards(tmp_path / "raw") == shard_paths(hub)


# --- offline ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["constants", "env"])
def test_offline_with_nothing_local_fails_without_connecting(
    hub: hs.HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str
):
    go_offline(monkeypatch, how)

    with pytest.raises(OffcurateError, match="offline mode .* nothing of dataset") as failure:
        download(tmp_path / "raw", endpoint=hub.url)

    assert "unset HF_HUB_OFFLINE" in str(failure.value) and "--sample" in str(failure.value)
    assert hub.count() == 0


def test_offline_accepts_a_previous_complete_download(
    hub: hs.HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    out = tmp_path / "raw"
    download(out, endpoint=hub.url, max_shards=2)
    requests_before = hub.count()
    go_offline(monkeypatch)

    report = download(out, endpoint=hub.url, max_shards=2)
    with pytest.raises(OffcurateError, match="only 2 of 3 shards"):
        download(out, endpoint=hub.url)

    assert hub.count() == requests_before
    assert report.counts["skipped (already here)"] == 2
    assert manifest(out)["sha"] == hub.repos[REPO].sha


def test_offline_copies_shards_from_the_hf_cache(
    hub: hs.HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    for path in shard_paths(hub):  # what `hf download` or `datasets` would have left in HF_HOME
        hf_hub_download(REPO, path, repo_type="dataset", endpoint=hub.url)
    requests_before = hub.count()
    go_offline(monkeypatch)
    out = tmp_path / "raw"

    report = download(out, endpoint=hub.url)

    assert hub.count() == requests_before
    assert local_shards(out) == shard_paths(hub)
    assert all((out / p).read_bytes() == hub.repos[REPO].files[p] for p in shard_paths(hub))
    meta = manifest(out)
    assert (meta["sha"], meta["source"]) == (hub.repos[REPO].sha, "offline: Hugging Face cache")
    assert report.counts["copied from the HF cache"] == 3


# --- the output folder ------------------------------------------------------------------------------------


@pytest.mark.parametrize("content", ["other files", "the sample"])
def test_a_folder_that_is_not_this_download_needs_overwrite(
    hub: hs.HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str
):
    out = tmp_path / "raw"
    if content == "other files":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    else:
        monkeypatch.setattr(offcurate.data, "SAMPLE_DIR", make_sample(tmp_path / "sample"))
        write_sample(out)

    with pytest.raises(OutputExistsError, match="--overwrite"):
        download(out, endpoint=hub.url)
    assert hub.count() == 0

    download(out, endpoint=hub.url, overwrite=True)
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "README.md",
        "data",
        "download.json",
    ]
    assert local_shards(out) == shard_paths(hub)


def test_fewer_shards_than_already_downloaded_needs_overwrite(hub: hs.HubStandin, tmp_path: Path):
    out = tmp_path / "raw"
    download(out, endpoint=hub.url)

    with pytest.raises(OutputExistsError, match="2 shard"):
        download(out, endpoint=hub.url, max_shards=1)

    download(out, endpoint=hub.url, max_shards=1, overwrite=True)
    assert local_shards(out) == shard_paths(hub)[:1]


# --- the embedded sample ----------------------------------------------------------------------------------


def make_sample(folder: Path, shards: int = 2) -> Path:
    folder.mkdir(parents=True)
    for i in range(shards):
        pq.write_table(
            hs.openthoughts3_table(3 + i, seed=i), folder / f"train-{i:05d}-of-{shards:05d}.parquet"
        )
    (folder / "README.md").write_text("sample notes, not data\n")
    return folder


def test_write_sample_copies_the_embedded_shards_with_a_card(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    sample = make_sample(tmp_path / "sample")
    monkeypatch.setattr(offcurate.data, "SAMPLE_DIR", sample)
    out = tmp_path / "raw"

    report = write_sample(out)

    names = sorted(p.name for p in sample.glob("*.parquet"))
    assert local_shards(out) == [f"data/{name}" for name in names]
    assert all((out / "data" / name).read_bytes() == (sample / name).read_bytes() for name in names)
    assert "name: conversations" in (out / "README.md").read_text()
    assert manifest(out)["source"] == "sample" and manifest(out)["complete"] is True
    assert (report.counts["copied"], report.counts["rows"], report.output) == (2, 7, str(out))
    with pytest.raises(OutputExistsError):
        write_sample(out)
    write_sample(out, overwrite=True)
    assert local_shards(out) == [f"data/{name}" for name in names]


def test_write_sample_without_sample_shards_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "empty").mkdir()
    monkeypatch.setattr(offcurate.data, "SAMPLE_DIR", tmp_path / "empty")

    with pytest.raises(InputError, match="no \\*.parquet"):
        write_sample(tmp_path / "raw")
    assert not (tmp_path / "raw").exists()


@pytest.mark.skipif(
    not list(Path(offcurate.data.SAMPLE_DIR).glob("*.parquet")), reason="embedded sample not generated yet"
)
def test_the_packaged_sample_has_the_openthoughts3_columns(tmp_path: Path):
    write_sample(tmp_path / "raw")

    schema = pq.read_schema(list_shards(tmp_path / "raw")[0])
    assert {"difficulty", "source", "domain", "conversations"} <= set(schema.names)


# --- progress ---------------------------------------------------------------------------------------------


def test_shard_progress_takes_huggingface_hub_byte_reports():
    """The real Hub serves Xet files: its reporter must be able to drive the shard bar (HTTP is run above)."""
    xet = pytest.importorskip("huggingface_hub.utils._xet_progress_reporting")
    from rich.progress import Progress

    with Progress(disable=True) as bar:
        task = bar.add_task("download", total=3)
        bytes_bar = type("Bytes", (download_module.ShardBytes,), {"bar": bar, "task": task, "base": 1})
        reporter = xet.XetDownloadProgressReporter(
            reconstruction_desc="shard", total=200, log_level=logging.INFO, tqdm_class=bytes_bar
        )
        done = SimpleNamespace(
            total_bytes_completed=50,
            total_transfer_bytes_completed=30,
            total_bytes_completion_rate=1e6,
            total_transfer_bytes_completion_rate=1e6,
            total_bytes=200,
        )
        reporter.update_progress(done)
        assert bar.tasks[0].completed == pytest.approx(1.25)
        reporter.update_progress(SimpleNamespace(**{**vars(done), "total_bytes_completed": 400}))
        assert bar.tasks[0].completed == pytest.approx(2.0)  # never past the shard's share
        reporter.close()
