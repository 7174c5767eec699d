"""Workers sharing a model, and the broker restarting under queued work."""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from tests.live import REPO, LiveServer, live_fixture, make_server
from tests.waiting import wait_until

SHORT = {
    "model": "slow",
    "messages": [{"role": "user", "content": "hi"}],
    "max_tokens": 40,
    "temperature": 0,
}

# Each test starts servers and workers of its own.
pytestmark = pytest.mark.live


@live_fixture()
def pair(tmp_path: Path, tiny_gguf: Path, slow_gguf: Path) -> Iterator[tuple[LiveServer, Any]]:
    """`herd serve` (its own worker) plus a second worker process standing in for a second
    host: another name, the same broker and database."""
    server = make_server(tmp_path, {"tiny": tiny_gguf, "slow": slow_gguf}, {})
    server.start()
    env = {**server.env, "REDIS_URL": server.redis_url}
    second = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "project.cli",
            "worker",
            "--device",
            "cpu",
            "--name",
            "second@elsewhere",
        ],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while len(server.workers()) < 2:
        assert time.monotonic() < deadline, "the second worker never registered"
        time.sleep(0.2)
    yield server, second
    second.kill()
    second.wait()
    server.stop()


def served_by(server: LiveServer, request_id: str) -> str:
    entries: Any = server.redis().xrange(f"{server.namespace}:req:{request_id}")
    return json.loads(entries[0][1][b"e"])["worker"]


def pinned_beat_after(server: LiveServer, since: float) -> dict[str, Any]:
    """The pinned worker's registry entry, once a heartbeat written after ``since`` is in."""

    def beat() -> dict[str, Any]:
        found = [w for w in server.workers() if w["name"] == "pinned@elsewhere"]
        return found[0] if found and float(found[0]["time"]) > since else {}

    return wait_until(beat, timeout=10, what="a heartbeat of the pinned worker")


def ask(server: LiveServer) -> httpx.Response:
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=SHORT, timeout=60)


def test_two_workers_share_a_model_and_either_can_die(pair: tuple[LiveServer, Any]) -> None:
    server, second = pair
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: ask(server), range(16)))
    assert all(r.status_code == 200 for r in replies)
    workers = {served_by(server, r.headers["x-request-id"]) for r in replies}
    assert workers == {w["name"] for w in server.workers()}, "requests did not spread"

    second.kill()
    second.wait()
    with ThreadPoolExecutor(max_workers=4) as pool:
        after = list(pool.map(lambda _: ask(server), range(6)))
    assert all(r.status_code == 200 for r in after)
    assert {served_by(server, r.headers["x-request-id"]) for r in after} != {"second@elsewhere"}


def test_queued_work_survives_a_broker_restart(tmp_path: Path, tiny_gguf: Path) -> None:
    # A message the restart catches between the lane and the worker is lost by the broker;
    # its line is sent again after HERD_LOST_LINE_AFTER.
    server = make_server(tmp_path, {"tiny": tiny_gguf}, {"HERD_LOST_LINE_AFTER": "3"})
    if server.env.get("REDIS_URL"):
        pytest.skip("the broker is an outside Redis here; the embedded one is tested")
    server.start()
    try:
        api = OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=2)
        lines = "\n".join(
            json.dumps(
                {
                    "custom_id": f"r{i}",
                    "method": "POST",
                    "url": "/v1/completions",
                    "body": {"model": "tiny", "prompt": f"p{i}", "max_tokens": 200},
                }
            )
            for i in range(60)
        )
        upload = api.files.create(file=("in.jsonl", io.BytesIO(lines.encode())), purpose="batch")
        batch = api.batches.create(
            input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h"
        )
        valkey = next(
            p
            for p in server.children()
            if "valkey-server" in Path(f"/proc/{p}/cmdline").read_text()
        )
        os.kill(valkey, signal.SIGTERM)  # a restart: Valkey writes its append-only file out
        deadline = time.monotonic() + 120
        while (status := api.batches.retrieve(batch.id)).status != "completed":
            assert status.status in ("in_progress", "finalizing"), status
            assert time.monotonic() < deadline, (status.request_counts, _lines_of(server))
            time.sleep(0.5)
        assert status.request_counts is not None and status.request_counts.completed == 60
        assert "valkey exited" in server.log_path.read_text()
        reply = httpx.post(
            f"{server.base_url}/v1/completions",
            json={"model": "tiny", "prompt": "x", "max_tokens": 2},
            timeout=30,
        )
        assert reply.status_code == 200
    finally:
        server.stop()


def _lines_of(server: LiveServer) -> str:
    """How many of the server's batch lines are in each status: what a failure needs to say
    where the lines stopped."""
    script = (
        "from collections import Counter; from inference_app.batches.models import BatchLine; "
        "print(Counter(BatchLine.objects.values_list('status', flat=True)))"
    )
    return server.herd("shell", "-c", script, check=False).stdout.strip()


@pytest.mark.django_db
def test_requests_waiting_for_a_dead_worker_move_to_a_live_one(
    server: LiveServer, settings: Any
) -> None:
    from workers.broker.queues import list_key
    from workers.broker.reroute import reroute_from_dead_workers

    settings.HERD_NAMESPACE = server.namespace
    client = server.redis()
    (live,) = server.workers()
    request_id = f"stranded-{time.time_ns()}"
    spec = json.loads(
        server.herd(
            "shell",
            "-c",
            "import json; from models_app.models import ModelRecord; "
            "print(json.dumps(ModelRecord.objects.get(name='tiny:latest').to_spec().to_json()))",
        )
        .stdout.strip()
        .splitlines()[-1]
    )
    args = [request_id, spec, {"prompt": "hi", "options": {"max_tokens": 3}}]
    body = base64.b64encode(json.dumps([args, {}, {}]).encode()).decode()
    message = json.dumps(
        {
            "body": body,
            "content-type": "application/json",
            "content-encoding": "utf-8",
            "headers": {
                "lang": "py",
                "task": "herd.generate",
                "id": request_id,
                "argsrepr": "",
                "kwargsrepr": "",
                "retries": 0,
            },
            "properties": {
                "delivery_tag": request_id,
                "body_encoding": "base64",
                "delivery_info": {"exchange": "", "routing_key": ""},
                "priority": 0,
            },
        }
    )
    dead_lane = list_key(f"{server.namespace}.worker.gone@nowhere.interactive")
    client.lpush(dead_lane, message)

    assert reroute_from_dead_workers(client, {live["name"]}) == 1
    assert client.llen(dead_lane) == 0
    deadline = time.monotonic() + 20
    stream = f"{server.namespace}:req:{request_id}"
    while True:
        entries: Any = client.xrange(stream)
        events = [json.loads(fields[b"e"]) for _, fields in entries]
        if events and events[-1]["type"] == "done":
            break
        assert time.monotonic() < deadline, events
        time.sleep(0.1)
    assert events[0]["worker"] == live["name"]


def test_a_pinned_model_loads_on_its_worker_at_start_and_its_requests_go_there(
    tmp_path: Path, tiny_gguf: Path, slow_gguf: Path
) -> None:
    server = make_server(tmp_path, {"tiny": tiny_gguf, "slow": slow_gguf}, {})
    server.start()
    pinned = None
    try:
        server.herd(
            "shell",
            "-c",
            (
                "from models_app.models import ModelRecord; from workers.models import Placement; "
                "Placement.objects.create(model=ModelRecord.objects.get(name='tiny:latest'), "
                "worker='pinned@elsewhere')"
            ),
        )
        env = {**server.env, "REDIS_URL": server.redis_url}
        pinned = subprocess.Popen(
            [sys.executable, "-m", "project.cli", "worker", "--name", "pinned@elsewhere"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while not any(
            w["name"] == "pinned@elsewhere" and "tiny:latest" in w["resident"]
            for w in server.workers()
        ):
            assert time.monotonic() < deadline, "the pinned model was not loaded at start"
            time.sleep(0.2)
        with ThreadPoolExecutor(max_workers=4) as pool:
            replies = list(
                pool.map(
                    lambda _: httpx.post(
                        f"{server.base_url}/v1/completions",
                        json={"model": "tiny", "prompt": "x", "max_tokens": 3},
                        timeout=60,
                    ),
                    range(8),
                )
            )
        assert {served_by(server, r.headers["x-request-id"]) for r in replies} == {
            "pinned@elsewhere"
        }
        # keep_alive 0 does not unload a pinned model.
        unload = httpx.post(
            f"{server.base_url}/api/generate", json={"model": "tiny", "keep_alive": 0}, timeout=30
        )
        assert unload.status_code == 200
        # A heartbeat begun after one written since the answer: what it lists was read after
        # the worker had handled the unload.
        answered = time.time()
        first = pinned_beat_after(server, answered)
        holder = pinned_beat_after(server, float(first["time"]))
        assert "tiny:latest" in holder["resident"]
    finally:
        if pinned is not None:
            pinned.kill()
            pinned.wait()
        server.stop()
