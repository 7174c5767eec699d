"""Helpers for the pull tests: talk to a live server's model endpoints."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx

from tests.http_methods import RequestMethods
from tests.live import LiveServer


def pull_stream(
    server: RequestMethods, model: str
) -> tuple[int, list[dict[str, Any]], httpx.Headers]:
    """POST /api/pull with streaming; the status, every NDJSON object, and the headers."""
    with server.stream(
        "POST", f"{server.base_url}/api/pull", json={"model": model}, timeout=120
    ) as response:
        if response.status_code != 200:
            response.read()
            return response.status_code, [response.json()], response.headers
        events = [json.loads(line) for line in response.iter_lines() if line.strip()]
        return response.status_code, events, response.headers


def pull_whole(server: RequestMethods, model: str) -> httpx.Response:
    """POST /api/pull with ``"stream": false``."""
    return server.post(
        f"{server.base_url}/api/pull", json={"model": model, "stream": False}, timeout=120
    )


def tags(server: RequestMethods) -> dict[str, dict[str, Any]]:
    models = server.get(f"{server.base_url}/api/tags", timeout=10).json()["models"]
    return {m["name"]: m for m in models}


def pulls(server: RequestMethods, name: str | None = None) -> list[dict[str, Any]]:
    params = {"name": name} if name else {}
    response = server.get(f"{server.base_url}/api/pulls/", params=params, timeout=10)
    response.raise_for_status()
    return list(response.json())


def wait_for_pull(server: LiveServer, pull_id: int, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = httpx.get(f"{server.base_url}/api/pulls/{pull_id}/", timeout=10).json()
        if job["status"] in ("ready", "failed", "cancelled") or time.monotonic() > deadline:
            return dict(job)
        time.sleep(0.1)


def repo_folder(server: LiveServer, repo_id: str) -> Path:
    return server.home / "models" / "hf.co" / repo_id


def partials(server: LiveServer) -> list[Path]:
    folder = server.home / "models" / ".partial"
    return sorted(folder.glob("*.part")) if folder.exists() else []
