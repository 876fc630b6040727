"""huggingface_hub glue for ``download``: a rich-driven stand-in for its tqdm, one-line errors, and the
dataset card's configs (``--config``/``--split``).

Kept apart from the stage so ``download.py`` reads as the plan (resolve, list, fetch, resume) and this file
holds what depends on huggingface_hub's exception types and progress protocol (checked against 2.4) and on
the card's ``configs`` metadata (the layout ``datasets`` reads: ``config_name``, ``data_files`` as a
pattern, a list of patterns, or a list of ``{split, path}``).
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from rich.progress import Progress, TaskID

from .io.errors import InputError, OffcurateError

File = TypeVar("File")  # anything with a repo-relative ``path``


class ShardBytes:
    """A duck-typed tqdm for ``hf_hub_download(tqdm_class=...)``.

    huggingface_hub reports the bytes of the file being fetched (HTTP or Xet) through it; they move the
    shard bar by the finished fraction of the current shard, so one rich bar covers the whole download
    instead of a tqdm bar per file. ``bar``/``task`` are set on a per-run subclass, ``base`` per shard.
    """

    bar: Progress | None = None
    task: TaskID | None = None
    base: int = 0

    def __init__(self, *args: Any, total: float | None = None, initial: float = 0, **kwargs: Any) -> None:
        self.total, self.n = total, initial
        self._show()

    def update(self, n: float | None = 1) -> None:
        self.n += n or 0
        self._show()

    def update_transfer(self, n: float | None = 1) -> None:
        """Xet network bytes (before decompression); the file bytes given to ``update`` are enough."""

    def set_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        """Speed text of tqdm; rich computes its own."""

    def set_transfer_postfix_str(self, *args: Any, **kwargs: Any) -> None:
        """Speed text of the Xet transfer; rich computes its own."""

    def refresh(self) -> None:
        self._show()

    def close(self) -> None:
        """Nothing to release: the rich bar belongs to the download loop."""

    def __enter__(self) -> ShardBytes:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _show(self) -> None:
        if self.bar is not None and self.task is not None and self.total:
            fraction = min(max(self.n / self.total, 0.0), 1.0)
            self.bar.update(self.task, completed=self.base + fraction)


@contextlib.contextmanager
def hub_errors(hub: str, repo_id: str, revision: str, doing: str) -> Iterator[None]:
    """Turn huggingface_hub / HTTP client failures into one-line OffcurateErrors the user can act on."""
    login = "set HF_TOKEN or run `hf auth login`"
    try:
        yield
    except OffcurateError:
        raise
    except GatedRepoError:
        raise OffcurateError(
            f"dataset '{repo_id}' on {hub} is gated: accept its terms on the dataset page, then {login}"
        ) from None
    except RepositoryNotFoundError:
        raise OffcurateError(
            f"dataset repository '{repo_id}' not found on {hub} "
            f"(check --repo-id; if it is private or gated, {login})"
        ) from None
    except RevisionNotFoundError:
        raise OffcurateError(
            f"revision '{revision}' not found in dataset '{repo_id}' on {hub} "
            "(check --revision: a branch, a tag or a commit sha)"
        ) from None
    except LocalEntryNotFoundError as err:
        # hf_hub_download wraps why the HEAD of a file failed (no network, HTTP 403, ...): explain the cause
        cause = err.__cause__
        if isinstance(cause, Exception) and not isinstance(cause, LocalEntryNotFoundError):
            with hub_errors(hub, repo_id, revision, doing):
                raise cause from None
        raise OffcurateError(f"{doing} failed: {first_line(err)}") from err
    except EntryNotFoundError:
        raise OffcurateError(f"{doing}: no such file in '{repo_id}' at '{revision}' on {hub}") from None
    except OfflineModeIsEnabled:
        raise OffcurateError(
            f"offline mode (HF_HUB_OFFLINE is set): cannot reach {hub} while {doing}"
        ) from None
    except HfHubHTTPError as err:
        status = err.response.status_code if err.response is not None else "?"
        hint = f" ({login})" if status in (401, 403) else ""
        raise OffcurateError(
            f"the Hub at {hub} answered HTTP {status} while {doing}{hint}: {first_line(err)}"
        ) from err
    except HFValidationError as err:
        raise OffcurateError(f"invalid --repo-id or --revision: {first_line(err)}") from None
    except transport_errors() as err:
        raise OffcurateError(
            f"cannot reach the Hub at {hub}: {first_line(err)}; "
            "set HF_HUB_OFFLINE=1 to use the cache, or use --sample"
        ) from err
    except OSError as err:  # e.g. huggingface_hub's size consistency check, disk full
        raise OffcurateError(f"{doing} failed: {first_line(err)}") from err


def transport_errors() -> tuple[type[BaseException], ...]:
    """Connection errors of the HTTP client huggingface_hub uses (httpx2 in 2.x; httpx or requests before)."""
    found: list[type[BaseException]] = []
    for module, name in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "RequestException"),
    ):
        with contextlib.suppress(ImportError, AttributeError):
            found.append(getattr(importlib.import_module(module), name))
    return tuple(found)


def first_line(err: BaseException) -> str:
    for line in str(err).splitlines():
        if line.strip() and not line.strip().endswith("Client Error."):
            return line.strip()
    return type(err).__name__


@dataclass(frozen=True)
class Subset:
    """``--config`` / ``--split``: which of a dataset's Parquet files to fetch (None: all of them)."""

    config: str | None = None
    split: str | None = None

    def select(self, files: Sequence[File], card: dict | None, where: str) -> list[File]:
        """The files of this config (and split) by the card's ``data_files`` patterns; a one-line error
        naming the configs (or splits) there are when this one is not declared or matches nothing."""
        if self.config is None:
            return list(files)
        configs = {c.get("config_name"): c for c in (card or {}).get("configs") or [] if isinstance(c, dict)}
        if self.config not in configs:
            known = ", ".join(str(name) for name in configs) or "none"
            raise InputError(f"{where}: no config '{self.config}' in the dataset card (configs: {known})")
        patterns = _patterns(configs[self.config].get("data_files"), self.split)
        if not patterns:
            splits = ", ".join(sorted(_patterns_by_split(configs[self.config].get("data_files")))) or "none"
            raise InputError(
                f"{where}: config '{self.config}' has no split '{self.split}' (splits: {splits})"
            )
        matching = [re.compile(_glob_regex(p)) for p in patterns]
        chosen = [f for f in files if any(m.fullmatch(f.path) for m in matching)]  # type: ignore[attr-defined]
        if not chosen:
            raise InputError(
                f"{where}: no Parquet file matches config '{self.config}' ({', '.join(patterns)})"
            )
        return chosen


def _patterns_by_split(data_files: Any) -> dict[str, list[str]]:
    """``data_files`` of a config as {split: [patterns]} (a bare pattern or list is the ``train`` split)."""
    if isinstance(data_files, str):
        return {"train": [data_files]}
    found: dict[str, list[str]] = {}
    for entry in data_files or []:
        if isinstance(entry, str):
            found.setdefault("train", []).append(entry)
        elif isinstance(entry, dict):
            paths = entry.get("path")
            found.setdefault(str(entry.get("split", "train")), []).extend(
                [paths] if isinstance(paths, str) else list(paths or [])
            )
    return found


def _patterns(data_files: Any, split: str | None) -> list[str]:
    by_split = _patterns_by_split(data_files)
    if split is None:
        return [p for patterns in by_split.values() for p in patterns]
    return by_split.get(split, [])


def _glob_regex(pattern: str) -> str:
    """A ``data_files`` glob as a regex over repo paths: ``*`` and ``?`` stay inside one folder, ``**``
    crosses folders, ``[...]`` is a character class (fsspec's glob, which ``datasets`` uses)."""
    out, i = [], 0
    pattern = pattern.lstrip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        elif pattern[i] == "[" and (end := pattern.find("]", i + 1)) > i:
            out.append(pattern[i : end + 1])
            i = end + 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
