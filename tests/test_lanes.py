"""Lane limits and the queue status, on a worker that takes one request at a time."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.live import LiveServer, live_fixture, make_server
from tests.waiting import wait_until

LONG = {
    "model": "slow",
    "messages": [{"role": "user", "content": "go"}],
    "max_tokens": 2500,
    "temperature": 0,
    "stream": True,
}
SHORT = {"model": "slow", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 3}


@live_fixture(scope="module")
def one_thread_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, slow_gguf: Path
) -> Iterator[LiveServer]:
    server = make_server(
        tmp_path_factory.mktemp("lanes"),
        {"tiny": tiny_gguf, "slow": slow_gguf},
        {"HERD_WORKER_THREADS": "1", "HERD_MAX_QUEUE": "2", "HERD_RETRY_AFTER": "3"},
    )
    server.start()
    yield server
    server.stop()


def test_a_full_lane_answers_503_with_retry_after_and_the_status_shows_the_queue(
    one_thread_server: LiveServer,
) -> None:
    base = one_thread_server.base_url
    replies: dict[str, int] = {}

    def queued(request_id: str) -> None:
        replies[request_id] = httpx.post(
            f"{base}/v1/chat/completions",
            json=SHORT,
            headers={"X-Request-Id": request_id},
            timeout=120,
        ).status_code

    def slow_status() -> dict[str, Any]:
        models = httpx.get(f"{base}/api/status", timeout=10).json()["models"]
        return next(m for m in models if m["model"] == "slow:latest")

    def lane_holds(n: int) -> bool:
        return bool(slow_status()["lanes"]["interactive"]["queued"] == n)

    with httpx.stream("POST", f"{base}/v1/chat/completions", json=LONG, timeout=120) as busy:
        assert busy.status_code == 200
        ids = [f"queued-{i}-{time.time_ns()}" for i in range(2)]
        waiting = [threading.Thread(target=queued, args=(request_id,)) for request_id in ids]
        for n, thread in enumerate(waiting, start=1):
            thread.start()
            # In order: the first one is queued before the second is sent.
            wait_until(partial(lane_holds, n), 10, f"{n} requests queued")

        first_id = ids[0]
        where = httpx.get(f"{base}/api/status", params={"request_id": first_id}, timeout=10)
        (worker,) = one_thread_server.workers()
        assert where.json() == {
            "request_id": first_id,
            "state": "queued",
            "model": "slow:latest",
            "worker": worker["name"],
            "lane": "interactive",
            "position": 1,
        }
        second = httpx.get(f"{base}/v1/status", params={"request_id": ids[1]}, timeout=10)
        assert second.json()["position"] == 2

        full = httpx.post(f"{base}/v1/chat/completions", json=SHORT, timeout=30)
        assert full.status_code == 503
        assert full.headers["retry-after"] == "3"
        assert full.json()["error"]["code"] == "queue_full"
        ollama = httpx.post(
            f"{base}/api/generate",
            json={"model": "slow", "prompt": "hi", "stream": False},
            timeout=30,
        )
        assert ollama.status_code == 503
        assert ollama.headers["retry-after"] == "3"
        assert "error" in ollama.json() and isinstance(ollama.json()["error"], str)

        running = httpx.get(
            f"{base}/api/status", params={"request_id": busy.headers["x-request-id"]}, timeout=10
        ).json()
        assert running["state"] == "running"
    for thread in waiting:
        thread.join(120)
    assert sorted(replies.values()) == [200, 200]
    assert (
        httpx.get(f"{base}/api/status", params={"request_id": ids[0]}, timeout=10).json()["state"]
        == "done"
    )
    unknown = httpx.get(f"{base}/api/status", params={"request_id": "nope-nope-nope"}, timeout=10)
    assert unknown.status_code == 404


def test_the_status_lists_workers_and_what_they_hold(one_thread_server: LiveServer) -> None:
    base = one_thread_server.base_url
    assert httpx.post(
        f"{base}/v1/completions", json={"model": "tiny", "prompt": "x", "max_tokens": 2}, timeout=30
    ).is_success
    wait_until(
        lambda: (
            "tiny:latest"
            in httpx.get(f"{base}/v1/status", timeout=10).json()["workers"][0]["resident"]
        ),
        10,
        "tiny shown resident",
    )
    status = httpx.get(f"{base}/v1/status", timeout=10).json()
    (worker,) = status["workers"]
    assert worker["device"] == "cpu" and worker["heartbeat_age"] < 5
    tiny = next(m for m in status["models"] if m["model"] == "tiny:latest")
    assert tiny["resident_on"] == [worker["name"]]
