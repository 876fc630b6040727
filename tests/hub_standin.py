"""A local stand-in of the Hugging Face Hub: enough for ``huggingface_hub`` to list and fetch a dataset repo.

Tests must never reach the network, yet the download stage should run through the real ``huggingface_hub``
code path (``HfApi.dataset_info``, ``HfApi.list_repo_tree``, ``hf_hub_download``). This module serves that
path from memory with ``http.server`` on 127.0.0.1 (a free port), in a background thread.

Endpoints, as huggingface_hub 2.4 calls them (``hf_api.py``, ``file_download.py``, ``utils/_http.py``):

- ``GET  /api/datasets/{repo}`` and ``/api/datasets/{repo}/revision/{rev}``: repo info (``sha``, ``siblings``,
  and ``cardData``: the YAML front matter of the repo's ``README.md``, parsed, as the Hub sends it)
- ``GET  /api/datasets/{repo}/tree/{rev}[/{path}]?recursive=..``: files (size, oid, lfs) and folders
- ``POST /api/datasets/{repo}/paths-info/{rev}`` (form ``paths=..``): the same entries for given paths
- ``HEAD|GET /datasets/{repo}/resolve/{rev}/{path}``: the file, with ``X-Repo-Commit``, ``ETag``,
  ``Content-Length`` (and ``X-Linked-Etag``/``X-Linked-Size`` for LFS files, as the Hub sends them); GET
  honours ``Range: bytes=a-[b]`` with ``206``/``Content-Range`` (huggingface_hub resumes with it).

Errors carry the ``X-Error-Code`` header ``hf_raise_for_status`` maps to exceptions: ``RepoNotFound``
(unknown repo, or a missing/invalid token when ``token`` is set, like a private repo), ``RevisionNotFound``
and ``EntryNotFound``. Every request is counted per (method, path) so tests can assert what was fetched;
``fail`` forces a status on paths containing a given text (e.g. a 403 on one file).
"""

from __future__ import annotations

import hashlib
import io
import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

DEFAULT_REPO_ID = "open-thoughts/OpenThoughts3-1.2M"
LAST_MODIFIED = "2025-06-01T12:00:00.000Z"

OPENTHOUGHTS3_SCHEMA = pa.schema(
    [
        ("difficulty", pa.int64()),
        ("source", pa.string()),
        ("domain", pa.string()),
        (
            "conversations",
            pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())])),
        ),
    ]
)


def openthoughts3_table(rows: int, seed: int = 0) -> pa.Table:
    """A tiny table with the OpenThoughts3-1.2M columns and types (one user turn, one assistant turn)."""
    domains = ("math", "code", "science")
    return pa.table(
        {
            "difficulty": [(seed + i) % 10 for i in range(rows)],
            "source": [f"source-{seed}" for _ in range(rows)],
            "domain": [domains[(seed + i) % 3] for i in range(rows)],
            "conversations": [
                [
                    {"from": "human", "value": f"What is {seed} + {i}?"},
                    {"from": "gpt", "value": f"<think>add</think> The answer is \\boxed{{{seed + i}}}."},
                ]
                for i in range(rows)
            ],
        },
        schema=OPENTHOUGHTS3_SCHEMA,
    )


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def openthoughts3_files(shards: int = 3, rows: int = 4) -> dict[str, bytes]:
    """Repo files laid out like OpenThoughts3-1.2M: Parquet shards under ``data/`` plus a card and attributes.

    Shards get different row counts so their sizes differ, and are inserted in reverse order so a client
    that forgets to sort would pick the wrong ones.
    """
    files = {
        f"data/train-{i:05d}-of-{shards:05d}.parquet": parquet_bytes(openthoughts3_table(rows + i, seed=i))
        for i in reversed(range(shards))
    }
    files["README.md"] = b"---\nlicense: apache-2.0\n---\n# OpenThoughts3 stand-in\n"
    files[".gitattributes"] = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n"
    return files


@dataclass
class StandinRepo:
    """One dataset repo at one commit; ``refs`` maps branch/tag names to that commit."""

    repo_id: str = DEFAULT_REPO_ID
    files: dict[str, bytes] = field(default_factory=openthoughts3_files)
    refs: dict[str, str] = field(default_factory=dict)
    sha: str = ""

    def __post_init__(self) -> None:
        if not self.sha:
            digest = hashlib.sha1(self.repo_id.encode())
            for path in sorted(self.files):
                digest.update(path.encode() + b"\0" + self.files[path])
            self.sha = digest.hexdigest()
        self.refs = {"main": self.sha, **self.refs}

    def commit_for(self, revision: str) -> str | None:
        if revision == self.sha:
            return self.sha
        return self.refs.get(revision)


def is_lfs(path: str) -> bool:
    return path.endswith(".parquet")


def card_data(readme: bytes | None) -> dict | None:
    """The YAML front matter of a dataset card (``---`` ... ``---`` at the top), parsed; None without one."""
    if not readme or not readme.startswith(b"---"):
        return None
    front = readme.decode().split("---", 2)[1]
    data = yaml.safe_load(front)
    return data if isinstance(data, dict) else None


def git_blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def etag(path: str, content: bytes) -> str:
    """The Hub's ETag: the sha256 of the content for LFS files, the git blob sha1 otherwise."""
    return hashlib.sha256(content).hexdigest() if is_lfs(path) else git_blob_sha1(content)


def tree_entry(path: str, content: bytes) -> dict:
    entry: dict = {"type": "file", "oid": git_blob_sha1(content), "size": len(content), "path": path}
    if is_lfs(path):
        entry["lfs"] = {"oid": hashlib.sha256(content).hexdigest(), "size": len(content), "pointerSize": 134}
    return entry


def folder_entry(path: str) -> dict:
    return {"type": "directory", "oid": hashlib.sha1(path.encode()).hexdigest(), "path": path}


class HubStandin:
    """Serve ``repos`` on ``http://127.0.0.1:<free port>`` (a context manager); ``url`` is the endpoint."""

    def __init__(self, repos: list[StandinRepo] | None = None, token: str | None = None):
        self.repos = {repo.repo_id: repo for repo in (repos if repos is not None else [StandinRepo()])}
        self.token = token
        self.fail: dict[str, int] = {}
        self.requests: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="hub-standin", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubStandin:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def record(self, method: str, path: str) -> None:
        with self._lock:
            self.requests[(method, path)] += 1

    def count(self, method: str | None = None, contains: str = "") -> int:
        """Requests seen so far with this method (any if None) whose decoded path contains ``contains``."""
        with self._lock:
            return sum(
                n
                for (m, path), n in self.requests.items()
                if (method is None or m == method) and contains in path
            )

    def downloads(self, filename: str = "") -> int:
        """GET requests for file contents (``/resolve/``), optionally only those of ``filename``."""
        with self._lock:
            return sum(
                n
                for (m, path), n in self.requests.items()
                if m == "GET" and "/resolve/" in path and path.endswith("/" + filename if filename else "")
            )

    def resolve_paths(self) -> list[str]:
        with self._lock:
            return sorted(path for (_, path) in self.requests if "/resolve/" in path)


def truncate(path: Path, keep: int) -> None:
    """Simulate an interrupted copy: keep only the first ``keep`` bytes of a local file."""
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:keep])


def _make_handler(hub: HubStandin) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "hub-standin/1"

        def log_message(self, format: str, *args: object) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._route("GET")

        def do_HEAD(self) -> None:
            self._route("HEAD")

        def do_POST(self) -> None:
            self._route("POST")

        # --- routing --------------------------------------------------------------------------------------

        def _route(self, method: str) -> None:
            split = urlsplit(self.path)
            segments = [unquote(s) for s in split.path.split("/")[1:]]
            hub.record(method, "/" + "/".join(segments))
            for text, status in hub.fail.items():
                if text in unquote(split.path):
                    return self._error(status, "", f"forced failure {status}", method)
            if hub.token is not None and self.headers.get("authorization") != f"Bearer {hub.token}":
                return self._error(401, "RepoNotFound", "Repository not found", method)

            if segments[:2] == ["api", "datasets"] and len(segments) >= 4:
                repo, rest = self._repo("/".join(segments[2:4]), method), segments[4:]
                if repo is None:
                    return None
                if method == "GET" and not rest:
                    return self._info(repo, "main")
                if method == "GET" and len(rest) == 2 and rest[0] == "revision":
                    return self._info(repo, rest[1])
                if method == "GET" and len(rest) >= 2 and rest[0] == "tree":
                    return self._tree(repo, rest[1], "/".join(rest[2:]), parse_qs(split.query))
                if method == "POST" and len(rest) == 2 and rest[0] == "paths-info":
                    return self._paths_info(repo, rest[1])
            elif segments[:1] == ["datasets"] and len(segments) >= 6 and segments[3] == "resolve":
                repo = self._repo("/".join(segments[1:3]), method)
                if repo is None:
                    return None
                return self._resolve(repo, segments[4], "/".join(segments[5:]), method)
            return self._error(404, "", "Not found", method)

        def _repo(self, repo_id: str, method: str) -> StandinRepo | None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found", method)
            return repo

        def _commit(self, repo: StandinRepo, revision: str, method: str) -> str | None:
            sha = repo.commit_for(revision)
            if sha is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", method)
            return sha

        # --- endpoints ------------------------------------------------------------------------------------

        def _info(self, repo: StandinRepo, revision: str) -> None:
            sha = self._commit(repo, revision, "GET")
            if sha is None:
                return
            self._json(
                {
                    "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
                    "id": repo.repo_id,
                    "author": repo.repo_id.split("/")[0],
                    "sha": sha,
                    "lastModified": LAST_MODIFIED,
                    "private": False,
                    "gated": False,
                    "disabled": False,
                    "tags": [],
                    "downloads": 0,
                    "likes": 0,
                    "siblings": [{"rfilename": path} for path in sorted(repo.files)],
                    "createdAt": LAST_MODIFIED,
                    **({"cardData": card} if (card := card_data(repo.files.get("README.md"))) else {}),
                }
            )

        def _tree(self, repo: StandinRepo, revision: str, base: str, query: dict[str, list[str]]) -> None:
            sha = self._commit(repo, revision, "GET")
            if sha is None:
                return
            recursive = query.get("recursive", ["false"])[0].lower() in {"1", "true"}
            prefix = f"{base.strip('/')}/" if base.strip("/") else ""
            if prefix and not any(path.startswith(prefix) for path in repo.files):
                return self._error(404, "EntryNotFound", f"{base} does not exist on {sha}", "GET")
            entries, folders = [], set()
            for path in repo.files:  # the repo's order, not sorted: clients must sort themselves
                if not path.startswith(prefix):
                    continue
                parts = path[len(prefix) :].split("/")
                for depth in range(1, len(parts)):
                    if depth == 1 or recursive:
                        folders.add(prefix + "/".join(parts[:depth]))
                if len(parts) == 1 or recursive:
                    entries.append(tree_entry(path, repo.files[path]))
            self._json([*map(folder_entry, sorted(folders)), *entries])

        def _paths_info(self, repo: StandinRepo, revision: str) -> None:
            sha = self._commit(repo, revision, "POST")
            if sha is None:
                return
            length = int(self.headers.get("content-length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            folders = {"/".join(p.split("/")[:d]) for p in repo.files for d in range(1, p.count("/") + 1)}
            found = []
            for path in form.get("paths", []):
                if path in repo.files:
                    found.append(tree_entry(path, repo.files[path]))
                elif path in folders:
                    found.append(folder_entry(path))
            self._json(found)

        def _resolve(self, repo: StandinRepo, revision: str, path: str, method: str) -> None:
            sha = self._commit(repo, revision, method)
            if sha is None:
                return
            content = repo.files.get(path)
            if content is None:
                return self._error(
                    404, "EntryNotFound", f"{path} does not exist", method, {"X-Repo-Commit": sha}
                )
            headers = {
                "X-Repo-Commit": sha,
                "ETag": f'"{etag(path, content)}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            if is_lfs(path):
                headers["X-Linked-Etag"] = headers["ETag"]
                headers["X-Linked-Size"] = str(len(content))
            status, body = 200, content
            wanted = self.headers.get("range") if method == "GET" else None
            if wanted:
                span = _parse_range(wanted, len(content))
                if span is None:
                    headers["Content-Range"] = f"bytes */{len(content)}"
                    return self._send(416, headers, b"", method)
                start, end = span
                status, body = 206, content[start : end + 1]
                headers["Content-Range"] = f"bytes {start}-{end}/{len(content)}"
            self._send(status, headers, body, method)

        # --- responses ------------------------------------------------------------------------------------

        def _json(self, payload: object) -> None:
            self._send(200, {"Content-Type": "application/json"}, json.dumps(payload).encode(), "GET")

        def _error(
            self, status: int, code: str, message: str, method: str, extra: dict[str, str] | None = None
        ) -> None:
            headers = {"Content-Type": "application/json", "X-Error-Message": message, **(extra or {})}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, headers, json.dumps({"error": message}).encode(), method)

        def _send(self, status: int, headers: dict[str, str], body: bytes, method: str) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method != "HEAD":
                self.wfile.write(body)

    return Handler


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """``bytes=a-`` or ``bytes=a-b`` (one range, as huggingface_hub sends) -> inclusive (start, end)."""
    unit, _, spec = header.partition("=")
    start_text, _, end_text = spec.strip().partition("-")
    if unit.strip() != "bytes" or not start_text.isdigit():
        return None
    start = int(start_text)
    end = min(int(end_text), size - 1) if end_text.isdigit() else size - 1
    return (start, end) if start <= end else None
