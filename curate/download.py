"""``offcurate download``: OpenThoughts3 Parquet shards from the Hub, pinned and resumable (or the sample).

Why: every later stage reads a local folder of ``*.parquet``. This stage makes that folder reproducible (the
requested revision is resolved once to a commit sha and every shard is fetched at that sha) and cheap to run
again (a 28 GB download cut off at shard 80 goes on from shard 80).

How:

1. ``HfApi.dataset_info(repo, revision)`` resolves the revision to a commit sha, and
   ``HfApi.list_repo_tree(recursive=True)`` at that sha lists the ``*.parquet`` files with their sizes; the
   first ``max_shards`` by path are selected.
2. Each shard is fetched with ``hf_hub_download(..., revision=sha, local_dir=output)``, so it keeps its repo
   path (``output/data/train-00000-of-00120.parquet``). huggingface_hub does the transfer (Xet or HTTP),
   retries, HF_TOKEN / HF_ENDPOINT, and its own bookkeeping under ``output/.cache/huggingface``. Its byte
   progress is routed into one rich bar over the shards.
3. ``download.json`` records the repo, the requested revision, the resolved sha and every finished shard
   with its size and commit; it is rewritten after each shard. A later run skips shards recorded at the same
   commit with the right size (without a request), fetches again any shard whose size is wrong (partial),
   and lets huggingface_hub compare ETags for shards recorded at another commit.
4. With ``HF_HUB_OFFLINE=1`` nothing touches the network: the request is served from a previous download in
   ``output`` or from the Hugging Face cache (``HF_HOME`` / ``HF_HUB_CACHE``), or fails saying so.
5. A dataset card (``README.md``) with the features of the first shard is written next to the shards.
6. ``config`` (and ``split``) select the files of one config of the dataset card, as ``datasets`` does:
   the Hub returns the card's YAML with the repo info (``cardData``), whose ``configs`` list the
   ``data_files`` patterns (``data/train-*``) of each config and split; only matching shards are fetched.

What the user can act on (no network, unknown repo or revision, missing token, HTTP failures) becomes a
one-line ``OffcurateError``; ``write_sample`` copies the embedded sample instead (``--sample``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

from huggingface_hub import HfApi, constants, hf_hub_download, metadata_load
from huggingface_hub.file_download import repo_folder_name
from huggingface_hub.hf_api import RepoFile

from .. import __version__
from .. import data as sample_data
from .hub import ShardBytes, Subset, hub_errors
from .io.card import write_card
from .io.errors import InputError, OffcurateError, OutputExistsError
from .io.output import output_lock, write_errors
from .io.report import StageReport, progress
from .io.shards import atomic_output, open_shard

DEFAULT_REPO_ID = "open-thoughts/OpenThoughts3-1.2M"
DEFAULT_REVISION = "main"
MANIFEST = "download.json"
REPO_TYPE = "dataset"

_COMMIT_SHA = re.compile(r"[0-9a-f]{40}")
_TRUE = {"1", "ON", "YES", "TRUE"}


@dataclass(frozen=True, order=True)
class Shard:
    """A Parquet file of the repo: its repo-relative POSIX path and its size in bytes."""

    path: str
    size: int


def download(
    output: Path,
    repo_id: str = DEFAULT_REPO_ID,
    revision: str = DEFAULT_REVISION,
    max_shards: int | None = None,
    endpoint: str | None = None,
    token: str | None = None,
    overwrite: bool = False,
    config: str | None = None,
    split: str | None = None,
) -> StageReport:
    """Download the first ``max_shards`` Parquet shards (all if None) of a Hub dataset repo into ``output``.

    ``endpoint`` defaults to HF_ENDPOINT (https://huggingface.co), ``token`` to HF_TOKEN or the saved login.
    ``output`` may be empty, missing, or a previous download of the same repo (which is resumed); anything
    else needs ``overwrite``, which replaces the folder once the Hub (or, offline, the cache) has answered.
    One download writes a folder at a time (a second one is refused, ``output_lock``).
    """
    output = Path(output)
    if max_shards is not None and max_shards < 1:
        raise OffcurateError(f"--max-shards must be at least 1 (got {max_shards})")
    if split is not None and config is None:
        raise OffcurateError("--split selects a split of a config: give --config too")
    subset = Subset(config, split)
    with write_errors(output):
        output.parent.mkdir(parents=True, exist_ok=True)
        with output_lock(output):
            return _download(output, repo_id, revision, max_shards, endpoint, token, overwrite, subset)


def _download(
    output: Path,
    repo_id: str,
    revision: str,
    max_shards: int | None,
    endpoint: str | None,
    token: str | None,
    overwrite: bool,
    subset: Subset,
) -> StageReport:
    report = StageReport("download", output=str(output))
    previous = _previous_download(output, repo_id, overwrite)
    if _offline():
        return _from_local_copies(output, repo_id, revision, max_shards, previous, overwrite, report, subset)

    hub = (endpoint or constants.ENDPOINT).rstrip("/")
    api = HfApi(endpoint=endpoint, token=token)
    with hub_errors(hub, repo_id, revision, "listing the repository"):
        info = api.dataset_info(repo_id, revision=revision)
        sha = info.sha
        if not sha:
            raise OffcurateError(f"the Hub at {hub} returned no commit sha for '{repo_id}' at '{revision}'")
        repo_shards = sorted(
            Shard(entry.path, entry.lfs.size if entry.lfs else entry.size)
            for entry in api.list_repo_tree(repo_id, recursive=True, revision=sha, repo_type=REPO_TYPE)
            if isinstance(entry, RepoFile) and entry.path.endswith(".parquet")
        )
    if not repo_shards:
        raise InputError(f"dataset '{repo_id}' at {sha}: no *.parquet files in the repository")
    card = info.card_data.to_dict() if info.card_data is not None else None
    repo_shards = subset.select(repo_shards, card, f"dataset '{repo_id}' at {sha}")
    selected = repo_shards[:max_shards]
    _prepare_output(output, selected, overwrite)

    done = {
        e["path"]: e for e in (previous or {}).get("files", []) if e.get("path") in {s.path for s in selected}
    }
    manifest = _manifest(repo_id, revision, sha, hub, max_shards, repo_shards, "hub", subset)
    counts = {"downloaded": 0, "re-fetched (partial)": 0, "skipped (already here)": 0}
    with progress() as bar:
        task = bar.add_task("download", total=len(selected))
        bytes_bar = type("_Bytes", (ShardBytes,), {"bar": bar, "task": task})
        for index, shard in enumerate(selected):
            bar.update(task, description=f"download {PurePosixPath(shard.path).name}", completed=index)
            local = output / shard.path
            entry = done.get(shard.path)
            if local.is_file():
                size = local.stat().st_size
                if size == shard.size and entry == {**asdict(shard), "commit": sha}:
                    counts["skipped (already here)"] += 1
                    continue
                if size != shard.size:
                    local.unlink()
                    counts["re-fetched (partial)"] += 1
            _write_manifest(output, {**manifest, "files": list(done.values())})
            before = _stamp(local)
            bytes_bar.base = index
            with hub_errors(hub, repo_id, revision, f"downloading {shard.path}"):
                hf_hub_download(
                    repo_id,
                    shard.path,
                    repo_type=REPO_TYPE,
                    revision=sha,
                    local_dir=output,
                    endpoint=endpoint,
                    token=token,
                    tqdm_class=bytes_bar,
                )
            got = local.stat().st_size
            if got != shard.size:
                raise OffcurateError(
                    f"{local}: got {got:,} bytes but the Hub lists {shard.size:,}; "
                    "run the command again to fetch it"
                )
            counts["downloaded" if _stamp(local) != before else "skipped (already here)"] += 1
            done[shard.path] = {**asdict(shard), "commit": sha}
        bar.update(task, completed=len(selected))

    manifest["files"] = [done[s.path] for s in selected]
    return _finish(output, manifest, selected, counts, report)


def write_sample(output: Path, overwrite: bool = False, format: str = "openthoughts3") -> StageReport:
    """Copy an embedded sample (``offcurate.data.SAMPLES[format]``: OpenThoughts3-shaped, or
    OpenR1-Math-220k-shaped with gold answers) into ``output/data/``.

    This is ``offcurate download --sample``: same layout, manifest and card as a real download, written
    atomically (the folder appears only when complete); no network.
    """
    output = Path(output)
    samples = {"openthoughts3": sample_data.SAMPLE_DIR, "openr1-math": sample_data.GOLD_SAMPLE_DIR}
    if format not in samples:
        raise OffcurateError(f"--format: no embedded sample of {format!r} (there are: {', '.join(samples)})")
    sample_dir = Path(samples[format])
    sources = sorted(sample_dir.glob("*.parquet")) if sample_dir.is_dir() else []
    if not sources:
        raise InputError(f"{sample_dir}: the embedded sample has no *.parquet files (reinstall offcurate)")
    report = StageReport("download", output=str(output))
    selected = [Shard(f"data/{p.name}", p.stat().st_size) for p in sources]
    manifest = _manifest("embedded-sample", None, None, None, None, selected, "sample")
    manifest["format"] = format
    manifest["files"] = [asdict(s) for s in selected]
    with atomic_output(output, overwrite) as tmp:
        (tmp / "data").mkdir()
        for source, shard in zip(sources, selected):
            shutil.copyfile(source, tmp / shard.path)
        _finish(tmp, manifest, selected, {"copied": len(selected)}, report)
    return report


# --- offline ------------------------------------------------------------------------------------------------


def _offline() -> bool:
    """HF_HUB_OFFLINE as huggingface_hub read it at import, or as set since (then do not connect either)."""
    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_HUB_OFFLINE", "").upper() in _TRUE


def _from_local_copies(
    output: Path,
    repo_id: str,
    revision: str,
    max_shards: int | None,
    previous: dict | None,
    overwrite: bool,
    report: StageReport,
    subset: Subset,
) -> StageReport:
    """Offline: serve the request from a previous download in ``output`` and/or the Hugging Face cache."""
    hub_cache = Path(constants.HF_HUB_CACHE)
    storage = hub_cache / repo_folder_name(repo_id=repo_id, repo_type=REPO_TYPE)
    same = (
        previous is not None
        and revision in (previous.get("revision"), previous.get("sha"))
        and subset == Subset(previous.get("config"), previous.get("split"))
    )
    sha = previous["sha"] if same and previous else _cached_commit(storage, revision)
    snapshot = storage / "snapshots" / sha if sha else None
    if same and previous:
        repo_shards = [Shard(e["path"], e["size"]) for e in previous.get("repo_shards", [])]
    elif snapshot is not None and snapshot.is_dir():
        repo_shards = sorted(
            Shard(p.relative_to(snapshot).as_posix(), p.stat().st_size) for p in _parquet(snapshot)
        )
        if repo_shards and subset.config is not None:
            card_file = snapshot / "README.md"
            card = metadata_load(card_file) if card_file.is_file() else None
            repo_shards = subset.select(
                repo_shards, card, f"dataset '{repo_id}' at {sha} (Hugging Face cache)"
            )
    else:
        repo_shards = []
    selected = repo_shards[:max_shards]

    plan: list[tuple[Shard, Path | None]] = []  # None: already in output
    for shard in selected:
        local, cached = output / shard.path, (snapshot / shard.path if snapshot else None)
        if same and local.is_file() and local.stat().st_size == shard.size:
            plan.append((shard, None))
        elif cached is not None and cached.is_file() and cached.stat().st_size == shard.size:
            plan.append((shard, cached))
    if not selected or len(plan) < len(selected):
        what = "nothing" if not selected else f"only {len(plan)} of {len(selected)} shards"
        raise OffcurateError(
            f"offline mode (HF_HUB_OFFLINE is set) and {what} of dataset '{repo_id}' at revision "
            f"'{revision}' found in {output} or in the Hugging Face cache {hub_cache}; "
            "unset HF_HUB_OFFLINE to download it, or use --sample"
        )
    _prepare_output(output, selected, overwrite)

    counts = {"copied from the HF cache": 0, "skipped (already here)": 0}
    with progress() as bar:
        task = bar.add_task("copy from cache", total=len(plan))
        for shard, cached in plan:
            if cached is None:
                counts["skipped (already here)"] += 1
            else:
                local = output / shard.path
                local.parent.mkdir(parents=True, exist_ok=True)
                tmp = local.with_name(f".{local.name}.tmp-{os.getpid()}")
                shutil.copyfile(cached, tmp)
                os.replace(tmp, local)
                counts["copied from the HF cache"] += 1
            bar.advance(task)

    endpoint = previous.get("endpoint") if same and previous else None
    source = "offline: previous download" if same else "offline: Hugging Face cache"
    manifest = _manifest(repo_id, revision, sha, endpoint, max_shards, repo_shards, source, subset)
    manifest["files"] = [{**asdict(s), "commit": sha} for s in selected]
    return _finish(output, manifest, selected, counts, report)


def _cached_commit(storage: Path, revision: str) -> str | None:
    """The commit a revision points to in the Hugging Face cache (``refs/<revision>``), or the sha itself."""
    if _COMMIT_SHA.fullmatch(revision):
        return revision
    ref = storage / "refs" / revision
    return ref.read_text().strip() if ref.is_file() else None


# --- output folder, manifest, card --------------------------------------------------------------------------


def _read_manifest(folder: Path) -> dict | None:
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _write_manifest(folder: Path, manifest: dict) -> None:
    """Replace ``download.json`` atomically, so an interrupted run never leaves half a manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, folder / MANIFEST)


def _manifest(
    repo_id: str,
    revision: str | None,
    sha: str | None,
    endpoint: str | None,
    max_shards: int | None,
    repo_shards: list[Shard],
    source: str,
    subset: Subset | None = None,
) -> dict[str, Any]:
    return {
        "repo_id": repo_id,
        "repo_type": REPO_TYPE,
        "config": subset.config if subset else None,
        "split": subset.split if subset else None,
        "revision": revision,
        "sha": sha,
        "endpoint": endpoint,
        "source": source,
        "max_shards": max_shards,
        "complete": False,
        "started_at": _now(),
        "finished_at": None,
        "offcurate_version": __version__,
        "files": [],
        "repo_shards": [asdict(s) for s in repo_shards],
    }


def _previous_download(output: Path, repo_id: str, overwrite: bool) -> dict | None:
    """The manifest of a download of ``repo_id`` to resume in ``output``; refuse other non-empty outputs."""
    if overwrite or not output.exists():
        return None
    if not output.is_dir():
        raise OutputExistsError(f"{output}: exists and is not a folder (pass --overwrite)")
    if not any(output.iterdir()):
        return None
    manifest = _read_manifest(output)
    if manifest is None or manifest.get("repo_id") != repo_id:
        held = "other files" if manifest is None else f"a download of '{manifest.get('repo_id')}'"
        raise OutputExistsError(
            f"{output}: output folder holds {held}, not of '{repo_id}' (pass --overwrite)"
        )
    return manifest


def _prepare_output(output: Path, selected: list[Shard], overwrite: bool) -> None:
    """Clear the folder for ``overwrite``; otherwise refuse shards that the request would not account for."""
    if overwrite and output.exists():
        if output.is_dir():
            shutil.rmtree(output)
        else:
            output.unlink()
    wanted = {s.path for s in selected}
    extra = [p for p in _parquet(output) if p.relative_to(output).as_posix() not in wanted]
    if extra:
        raise OutputExistsError(
            f"{output}: holds {len(extra)} shard(s) outside this request "
            f"(e.g. {extra[0].relative_to(output)}); pass --overwrite to replace the folder"
        )
    output.mkdir(parents=True, exist_ok=True)


def _parquet(folder: Path) -> list[Path]:
    """``*.parquet`` under ``folder``, minus hidden paths (huggingface_hub's ``.cache``, temporary files)."""
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.rglob("*.parquet")
        if not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def _finish(
    output: Path, manifest: dict, selected: list[Shard], counts: dict[str, int], report: StageReport
) -> StageReport:
    """Check the shards are readable Parquet, write the card and the final manifest, fill the report."""
    schema = open_shard(output / selected[0].path).schema_arrow
    rows = sum(open_shard(output / s.path).metadata.num_rows for s in selected)
    size = sum(s.size for s in selected)
    folders = {PurePosixPath(s.path).parent.as_posix() for s in selected}
    folder = folders.pop() if len(folders) == 1 else None
    glob = "**/*.parquet" if folder is None else ("*.parquet" if folder == "." else f"{folder}/*.parquet")

    repo_id, sha, total = manifest["repo_id"], manifest["sha"], len(manifest["repo_shards"])
    if manifest["source"] == "sample":
        like = "OpenR1-Math-220k" if manifest.get("format") == "openr1-math" else "OpenThoughts3-1.2M"
        title = f"{like.split('-')[0]}-shaped sample (offcurate)"
        body = (
            f"The small sample embedded in offcurate, with the columns of {like}: "
            f"{len(selected)} Parquet shard(s), {rows:,} rows, for trying the pipeline without a download. "
            f"`{MANIFEST}` lists the files."
        )
    else:
        hub = manifest["endpoint"] or constants.ENDPOINT
        title = f"{repo_id} (raw shards)"
        which = f"config `{manifest['config']}`" if manifest.get("config") else ""
        which += f", split `{manifest['split']}`" if manifest.get("split") else ""
        body = (
            f"Raw Parquet shards of the Hugging Face dataset [`{repo_id}`]({hub}/datasets/{repo_id}) "
            f"{which + ' ' if which else ''}"
            f"at commit `{sha}` (requested revision `{manifest['revision']}`): {len(selected)} of {total} "
            f"shards, {rows:,} rows, {_human(size)}, under their repository paths. `{MANIFEST}` lists "
            "every file with its size. The license and terms of the original dataset apply."
        )
    write_card(output, title, body, {"default": (glob, schema)})
    _write_manifest(output, {**manifest, "complete": True, "finished_at": _now()})

    report.counts.update({"repo": repo_id})
    for key in ("config", "split"):
        if manifest.get(key):
            report.counts[key] = manifest[key]
    if sha:
        report.counts.update({"revision": manifest["revision"], "commit": sha, "shards in repo": total})
    report.counts.update({"shards": len(selected), **counts, "rows": rows, "bytes": size})
    return report.finish()


def _stamp(path: Path) -> tuple[int, int, int] | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


def _human(size: int) -> str:
    return f"{size / 1e9:,.2f} GB" if size >= 1e9 else f"{size / 1e6:,.1f} MB"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
