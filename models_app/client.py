"""The CLI's side of the model endpoints: JSON and NDJSON over HTTP to the server at
``HERD_HOST``, as ``ollama`` talks to ``ollama serve``, with the key in ``HERD_API_KEY`` when
set. Errors become CommandError carrying the server's own message."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from django.conf import settings
from django.core.management.base import CommandError


def server_url(host: str) -> str:
    """``HERD_HOST`` as a URL; a wildcard bind address is reached on the loopback address."""
    if host.startswith(("http://", "https://")):
        return host.rstrip("/")
    address, _, port = host.rpartition(":")
    if address in ("0.0.0.0", "", "::", "[::]"):
        address = "127.0.0.1"
    return f"http://{address}:{port}"


class HerdClient:
    def __init__(self, base_url: str | None = None, timeout: float = 3600) -> None:
        self.base_url = base_url or server_url(str(settings.HERD_HOST))
        self.timeout = timeout

    def _open(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        *,
        upload: BinaryIO | None = None,
        size: int = 0,
    ) -> Any:
        headers = {"content-type": "application/json"}
        key = os.environ.get("HERD_API_KEY")
        if key:  # a server that listens beyond loopback asks for a key
            headers["authorization"] = f"Bearer {key}"
        data: Any = None if body is None else json.dumps(body).encode()
        if upload is not None:
            # Sent in blocks as urllib reads the file, never held in memory whole.
            headers = {**headers, "content-type": "application/octet-stream"}
            headers["content-length"] = str(size)
            data = upload
        request = urllib.request.Request(
            f"{self.base_url}{path}", data=data, headers=headers, method=method
        )
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            raise CommandError(_error_text(exc.read()) or str(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(
                f"could not reach Herd at {self.base_url} ({exc}): is `herd serve` running?"
            ) from None

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request; the decoded JSON answer, or None for an empty one."""
        with self._open(method, path, body) as response:
            raw = response.read()
        return json.loads(raw) if raw.strip() else None

    def has_blob(self, digest: str) -> bool:
        """``HEAD /api/blobs/<digest>``: whether the server holds that blob."""
        try:
            with self._open("HEAD", f"/api/blobs/{digest}", None):
                return True
        except CommandError:
            return False

    def upload_blob(self, path: Path, digest: str) -> None:
        """``POST /api/blobs/<digest>`` with the file's bytes."""
        with path.open("rb") as handle:
            self._open(
                "POST", f"/api/blobs/{digest}", None, upload=handle, size=path.stat().st_size
            ).close()

    def stream(self, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        """The objects of an NDJSON answer; an ``{"error": ...}`` object raises CommandError."""
        with self._open("POST", path, body) as response:
            for line in response:
                if not line.strip():
                    continue
                event = json.loads(line)
                if "error" in event:
                    raise CommandError(event["error"])
                yield event


def _error_text(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", errors="replace").strip()


def human_size(size: int) -> str:
    """Bytes as ``ollama list`` shows them: ``529 KB``, ``1.2 GB``."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
