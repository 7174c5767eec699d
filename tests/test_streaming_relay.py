"""The relay between workers and clients: cancellation and lost workers."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from typing import Any

import httpx

from tests.live import LiveServer
from tests.waiting import wait_until

LONG = {
    "model": "slow",
    "messages": [{"role": "user", "content": "go"}],
    "max_tokens": 3000,
    "temperature": 0,
    "stream": True,
}


def events_of(server: LiveServer, request_id: str) -> list[dict[str, Any]]:
    entries: Any = server.redis().xrange(f"{server.namespace}:req:{request_id}")
    return [json.loads(fields[b"e"]) for _, fields in entries]


def wait_for_final_event(server: LiveServer, request_id: str, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = events_of(server, request_id)
        if events and events[-1]["type"] in ("done", "error"):
            return events[-1]
        time.sleep(0.05)
    raise AssertionError(f"no final event in {timeout}s: {events_of(server, request_id)[-3:]}")


def assert_cancelled_at_once(server: LiveServer, request_id: str) -> None:
    """The generation of ``request_id``, whose client has just left, stopped within a few
    tokens of it."""
    left_at = time.monotonic()
    done = wait_for_final_event(server, request_id, timeout=5)
    assert done["type"] == "done"
    assert done["finish_reason"] == "cancelled"
    assert done["usage"]["completion_tokens"] < 500, "the engine kept generating"
    assert time.monotonic() - left_at < 2


def test_a_client_that_leaves_cancels_its_generation(server: LiveServer) -> None:
    with httpx.stream(
        "POST", f"{server.base_url}/v1/chat/completions", json=LONG, timeout=30
    ) as response:
        request_id = response.headers["x-request-id"]
        lines = response.iter_lines()
        for _ in range(6):
            next(lines)
    assert_cancelled_at_once(server, request_id)

    # The worker is free again: a short request is answered at once.
    started = time.monotonic()
    reply = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={**LONG, "stream": False, "max_tokens": 5},
        timeout=30,
    )
    assert reply.status_code == 200
    assert time.monotonic() - started < 3


def test_a_killed_worker_ends_the_stream_with_an_error_and_queued_requests_with_503(
    server: LiveServer,
) -> None:
    queued: dict[str, Any] = {}
    behind_id = f"behind-{time.time_ns()}"

    def queued_request() -> None:
        response = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={**LONG, "stream": False},
            headers={"X-Request-Id": behind_id},
            timeout=60,
        )
        queued["status"] = response.status_code
        queued["body"] = response.json()
        queued["at"] = time.monotonic()

    worker_pid = server.worker_pid()
    with httpx.stream(
        "POST", f"{server.base_url}/v1/chat/completions", json=LONG, timeout=60
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        next(line for line in lines if line.startswith("data:"))
        behind = threading.Thread(target=queued_request)
        behind.start()
        # The second request is taken by a worker thread (it announced its start).
        wait_until(
            lambda: [e for e in events_of(server, behind_id) if e["type"] == "start"],
            timeout=10,
            what="the second request taken by the worker",
        )
        os.kill(worker_pid, signal.SIGKILL)
        killed_at = time.monotonic()
        error = None
        for line in lines:
            if line.startswith("data:") and '"error"' in line:
                error = json.loads(line[5:])["error"]
                break
        heard_at = time.monotonic()
    assert error is not None, "the stream ended without an error event"
    assert error["code"] == "worker_lost"
    assert heard_at - killed_at < 10

    behind.join(30)
    assert queued["status"] == 503
    assert queued["body"]["error"]["code"] == "worker_lost"
    assert queued["at"] - killed_at < 10

    # herd serve brings the worker back, and it serves again.
    server.wait_ready()
    assert server.worker_pid() != worker_pid
    reply = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": "tiny", "prompt": "hi", "max_tokens": 3},
        timeout=30,
    )
    assert reply.status_code == 200
    assert "worker exited" in server.log_path.read_text()


def test_only_the_first_delivery_of_a_request_may_answer_it(server: LiveServer) -> None:
    from workers.worker.events import EventPublisher

    request_id = f"claim-test-{time.time_ns()}"
    first = EventPublisher(server.redis(), request_id)
    again = EventPublisher(server.redis(), request_id)
    assert first.claim("instance-a") is True
    assert again.claim("instance-b") is False
