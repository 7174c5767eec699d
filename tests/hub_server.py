"""A small stand-in for the Hugging Face hub, speaking the part of its protocol that
huggingface_hub uses to pull a file, so that the real huggingface_hub code runs against it.

- ``GET /api/models/{repo}`` and ``/api/models/{repo}/revision/{rev}``: the model info, with
  ``siblings`` carrying size and LFS sha256 (``?blobs=true``); ``404`` with
  ``X-Error-Code: RepoNotFound`` for an unknown repo.
- ``HEAD`` and ``GET /{repo}/resolve/{rev}/{file}``: ``ETag`` (the LFS sha256),
  ``X-Repo-Commit``, ``Content-Length``, ``Accept-Ranges``; a ``Range: bytes=N-`` request gets
  ``206`` with ``Content-Range``.

A repo may throttle its downloads (bytes per second) so that a test can act mid-download, and
may advertise a sha256 or size that differs from the bytes it serves. Every GET of a file is
logged with where it started and how many bytes went out.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"
_CHUNK = 8192


@dataclass
class HubRepo:
    files: dict[str, bytes]
    # Bytes per second for file downloads; 0 serves as fast as it can.
    throttle: int = 0
    # Per file: a sha256 or size to advertise instead of the real one.
    fake_sha256: dict[str, str] = field(default_factory=dict)
    fake_size: dict[str, int] = field(default_factory=dict)

    def sha256(self, name: str) -> str:
        return self.fake_sha256.get(name) or hashlib.sha256(self.files[name]).hexdigest()

    def size(self, name: str) -> int:
        return self.fake_size.get(name, len(self.files[name]))

    def sibling(self, name: str) -> dict[str, object]:
        entry: dict[str, object] = {
            "rfilename": name,
            "size": self.size(name),
            "blobId": hashlib.sha1(self.files[name]).hexdigest(),
        }
        if not name.endswith(".md"):  # small text files are plain git blobs on the hub
            size, sha256 = self.size(name), self.sha256(name)
            entry["lfs"] = {"size": size, "sha256": sha256, "pointerSize": 134}
        return entry


@dataclass
class Transfer:
    repo_id: str
    filename: str
    start: int
    sent: int = 0
    finished: bool = False
    at: float = field(default_factory=time.monotonic)


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, HubRepo] = {}
        self.transfers: list[Transfer] = []
        self.info_requests: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo_id: str, repo: HubRepo) -> HubRepo:
        self.repos[repo_id] = repo
        return repo

    def add_files(self, repo_id: str, files: dict[str, Path], **options: object) -> HubRepo:
        return self.add(
            repo_id,
            HubRepo({name: path.read_bytes() for name, path in files.items()}, **options),  # type: ignore[arg-type]
        )

    def transfers_of(self, repo_id: str, filename: str | None = None) -> list[Transfer]:
        with self._lock:
            return [
                t
                for t in self.transfers
                if t.repo_id == repo_id and (filename is None or t.filename == filename)
            ]

    def bytes_sent(self, repo_id: str, filename: str | None = None) -> int:
        return sum(t.sent for t in self.transfers_of(repo_id, filename))

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _record(self, transfer: Transfer) -> Transfer:
        with self._lock:
            self.transfers.append(transfer)
        return transfer


_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)(?:/revision/(?P<rev>[^/]+))?$")
_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


def _handler_for(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            self._serve(body=True)

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def _serve(self, body: bool) -> None:
            path = self.path.split("?", 1)[0]
            info = _INFO.match(path)
            if info:
                self._model_info(info.group("repo"))
                return
            resolve = _RESOLVE.match(path)
            if resolve:
                self._file(resolve.group("repo"), resolve.group("file"), body)
                return
            self._error(404, "RepoNotFound", "not found")

        def _error(self, status: int, code: str, message: str) -> None:
            payload = json.dumps({"error": message}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("X-Error-Message", message)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _model_info(self, repo_id: str) -> None:
            hub.info_requests.append(repo_id)
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return
            payload = json.dumps(
                {
                    "_id": repo_id,
                    "id": repo_id,
                    "modelId": repo_id,
                    "sha": COMMIT,
                    "private": False,
                    "siblings": [repo.sibling(name) for name in repo.files],
                }
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _file(self, repo_id: str, filename: str, body: bool) -> None:
            repo = hub.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", "Repository not found")
                return
            if filename not in repo.files:
                self._error(404, "EntryNotFound", "Entry not found")
                return
            data = repo.files[filename]
            start = 0
            wanted = _RANGE.match(self.headers.get("Range", ""))
            if wanted:
                start = int(wanted.group(1))
            if start >= len(data) and start > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.end_headers()
                return
            self.send_response(206 if wanted else 200)
            self.send_header("ETag", f'"{repo.sha256(filename)}"')
            self.send_header("X-Repo-Commit", COMMIT)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data) - start))
            if wanted:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            transfer = hub._record(Transfer(repo_id, filename, start))
            try:
                for offset in range(start, len(data), _CHUNK):
                    chunk = data[offset : offset + _CHUNK]
                    self.wfile.write(chunk)
                    transfer.sent += len(chunk)
                    if repo.throttle:
                        # Pacing the fake hub's bandwidth, not synchronisation: a slow
                        # download gives the tests a pull in progress to look at.
                        time.sleep(len(chunk) / repo.throttle)
                transfer.finished = True
            except (BrokenPipeError, ConnectionResetError):
                pass  # the downloader went away (a killed worker)

    return Handler


def populate(hub: FakeHub, folder: Path) -> None:
    """The repos the pull tests use, each with its own bytes (a distinct seed), so that no
    test resumes another's partial file."""
    from tests.tiny_gguf import write_tiny_gguf
    from tests.tiny_mmproj import write_tiny_mmproj

    def tiny(name: str, seed: int, **options: Any) -> Path:
        return write_tiny_gguf(folder / name, n_ctx=2048, seed=seed, **options)

    hub.add_files(
        "tester/tiny-GGUF",
        {
            "tiny-Q4_K_M.gguf": tiny("tiny-q4.gguf", 1),
            "tiny-Q8_0.gguf": tiny("tiny-q8.gguf", 2),
            # The tiny model's vision projector: pulled beside whichever quant is asked for.
            "mmproj-tiny-F16.gguf": write_tiny_mmproj(folder / "mmproj.gguf", seed=3),
            "README.md": _readme(folder),
        },
    )
    hub.add_files("tester/progress-GGUF", {"p-Q4_K_M.gguf": tiny("p.gguf", 4)}, throttle=400_000)
    hub.add_files("tester/cli-GGUF", {"cli-Q4_K_M.gguf": tiny("cli.gguf", 14)}, throttle=400_000)
    hub.add_files("tester/resume-GGUF", {"r-Q4_K_M.gguf": tiny("r.gguf", 5)}, throttle=60_000)
    hub.add_files("tester/cancel-GGUF", {"x-Q4_K_M.gguf": tiny("x.gguf", 12)}, throttle=50_000)
    hub.add_files("tester/delete-GGUF", {"d-Q4_K_M.gguf": tiny("d.gguf", 13)})
    hub.add_files("tester/join-GGUF", {"j-Q4_K_M.gguf": tiny("j.gguf", 6)}, throttle=250_000)
    corrupt = hub.add_files("tester/corrupt-GGUF", {"c-Q4_K_M.gguf": tiny("c.gguf", 7)})
    corrupt.fake_sha256["c-Q4_K_M.gguf"] = hashlib.sha256(b"other bytes").hexdigest()
    tiny("s-Q4_K_M.gguf", 8, split_max_tensors=8)  # three parts
    parts = sorted(folder.glob("s-Q4_K_M-*-of-*.gguf"))
    hub.add_files("tester/split-GGUF", {part.name: part for part in parts})
    hub.add_files(
        "tester/noquant-GGUF",
        {"n-Q8_0.gguf": tiny("n8.gguf", 9), "n-F16.gguf": tiny("n16.gguf", 10)},
    )
    hub.add_files("tester/nogguf", {"README.md": _readme(folder)})
    huge = hub.add_files("tester/huge-GGUF", {"h-Q4_K_M.gguf": tiny("h.gguf", 11)})
    huge.fake_size["h-Q4_K_M.gguf"] = 10**16


def _readme(folder: Path) -> Path:
    path = folder / "README.md"
    path.write_text("# a model card\n")
    return path


def point_huggingface_hub_at(url: str, monkeypatch: Any) -> None:
    """What ``HF_ENDPOINT=url`` does, for this process: huggingface_hub reads the variable once,
    at import, into these two constants."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", url)
    monkeypatch.setattr(
        constants, "HUGGINGFACE_CO_URL_TEMPLATE", url + "/{repo_id}/resolve/{revision}/{filename}"
    )
