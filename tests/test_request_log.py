"""The request log: one line per API request (method, path, status, duration, model, the
key's name and never its secret, prompt and completion tokens; a client error's message), off
with ``HERD_LOG_REQUESTS=off``; and an idle server quiet at INFO (beat's sweeps at DEBUG)."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.test import override_settings

from project.logs import QuietLog
from tests.keyed import KeyedServer
from tests.live import LiveServer, live_fixture, make_server

LINE = re.compile(
    r" INFO herd\.requests: (?P<method>\S+) (?P<path>\S+) (?P<status>\d{3}) "
    r"(?P<seconds>\d+\.\d{3})s model=(?P<model>\S+) key=(?P<key>\S+) "
    r"prompt=(?P<prompt>\S+) completion=(?P<completion>\S+) client=(?P<client>\S+)"
    r"(?: (?P<ended>\(client left\)))?(?: error=(?P<error>\".*\"))?$"
)


def lines_of(server: LiveServer, key_name: str, count: int = 1) -> list[dict[str, str]]:
    """The request log's lines for the key ``key_name``, once there are ``count``."""
    deadline = time.monotonic() + 30
    while True:
        found = [
            match.groupdict()
            for line in server.log_path.read_text(errors="replace").splitlines()
            if (match := LINE.search(line)) and match["key"] == key_name
        ]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"{len(found)} of {count} lines for {key_name}"
        time.sleep(0.1)


@pytest.fixture
def key(keyed_server: KeyedServer) -> Iterator[tuple[str, str]]:
    name = f"reader-{uuid.uuid4().hex[:8]}"
    secret = keyed_server.create_key(name)
    yield name, secret
    assert secret not in keyed_server.log_path.read_text(errors="replace")


def test_a_request_is_one_line_with_its_key_model_status_and_tokens(
    keyed_server: KeyedServer, key: tuple[str, str]
) -> None:
    name, secret = key
    reply = keyed_server.call(
        "POST",
        "/v1/chat/completions",
        secret,
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    )
    assert reply.status_code == 200, reply.text
    usage = reply.json()["usage"]
    (line,) = lines_of(keyed_server, name)
    assert (line["method"], line["path"], line["status"]) == ("POST", "/v1/chat/completions", "200")
    assert (line["model"], line["client"]) == ("tiny", "127.0.0.1")
    assert (int(line["prompt"]), int(line["completion"])) == (
        usage["prompt_tokens"],
        usage["completion_tokens"],
    )
    assert float(line["seconds"]) >= 0 and line["error"] is None


def test_a_streams_line_is_written_at_its_end_with_the_whole_answers_tokens(
    keyed_server: KeyedServer, key: tuple[str, str]
) -> None:
    name, secret = key
    body = {
        "model": "tiny",
        "max_tokens": 6,
        "stream": True,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with httpx.stream(
        "POST",
        f"{keyed_server.base_url}/v1/messages?beta=true",
        headers={"x-api-key": secret},
        json=body,
        timeout=60,
    ) as streamed:
        assert streamed.status_code == 200
        events = [
            json.loads(line[6:]) for line in streamed.iter_lines() if line.startswith("data: ")
        ]
    (delta,) = [e for e in events if e["type"] == "message_delta"]
    (line,) = lines_of(keyed_server, name)
    assert (line["path"], line["status"], line["ended"]) == ("/v1/messages", "200", None)
    assert int(line["prompt"]) == delta["usage"]["input_tokens"]
    assert int(line["completion"]) == delta["usage"]["output_tokens"]


def test_a_refused_request_is_logged_with_the_message_the_client_got(
    keyed_server: KeyedServer, key: tuple[str, str]
) -> None:
    name, secret = key
    reply = keyed_server.call(
        "POST",
        "/v1/responses",
        secret,
        json={
            "model": "tiny",
            "input": "hi",
            "tools": [{"type": "web_search"}],
            "tool_choice": {"type": "web_search"},
        },
    )
    assert reply.status_code == 400
    (line,) = lines_of(keyed_server, name)
    assert (line["path"], line["status"], line["model"]) == ("/v1/responses", "400", "tiny")
    assert json.loads(line["error"]) == reply.json()["error"]["message"]

    # Refused before any key was found: no key name, and never the secret sent.
    bogus = f"sk-bogus-{uuid.uuid4().hex}"
    refused = keyed_server.call("GET", f"/api/tags?probe={name}", bogus)
    assert refused.status_code == 401
    deadline = time.monotonic() + 30
    while not any(
        "GET /api/tags 401" in line and "invalid API key" in line
        for line in keyed_server.log_path.read_text(errors="replace").splitlines()
    ):
        assert time.monotonic() < deadline, "no line for the refused request"
        time.sleep(0.1)
    assert bogus not in keyed_server.log_path.read_text(errors="replace")


@live_fixture(scope="module")
def quiet_server(tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path) -> Iterator[LiveServer]:
    """Requests not logged, beat sweeping twice a second, and the log at DEBUG, so that the
    sweeps show at the level they are logged at."""
    live = make_server(
        tmp_path_factory.mktemp("quiet"),
        {"tiny": tiny_gguf},
        {"HERD_LOG_REQUESTS": "off", "HERD_BEAT_INTERVAL": "0.5", "HERD_LOG_LEVEL": "DEBUG"},
    )
    live.start()
    yield live
    live.stop()


def test_beats_sweeps_are_debug_lines_and_requests_can_go_unlogged(
    quiet_server: LiveServer,
) -> None:
    sweep = re.compile(r" (\w+) celery\.app\.trace: Task herd\.reap_dead_workers\[")
    deadline = time.monotonic() + 30
    while not sweep.search(quiet_server.log_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, "beat's sweep never ran"
        time.sleep(0.1)
    log = quiet_server.log_path.read_text(errors="replace")
    assert {m for m in sweep.findall(log)} == {"DEBUG"}
    for task in ("expire_batches", "reap_dead_workers", "resume_orphaned_pulls"):
        assert not re.search(rf" INFO celery\.\S+: Task herd\.{task}\[", log), task

    reply = httpx.post(
        f"{quiet_server.base_url}/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
        timeout=60,
    )
    assert reply.status_code == 200
    assert "herd.requests" not in quiet_server.log_path.read_text(errors="replace")


@override_settings(HERD_LOG_LEVEL="INFO")
def test_at_info_a_sweeps_lines_are_left_out_and_other_tasks_kept() -> None:
    quiet = QuietLog()
    logger = logging.getLogger("celery.app.trace")

    def record(task: str) -> logging.LogRecord:
        return logger.makeRecord(
            logger.name, logging.INFO, __file__, 1, "Task %s[%s] succeeded", (task, "1"), None
        )

    assert not quiet.filter(record("herd.reap_dead_workers"))
    assert not quiet.filter(record("herd.expire_batches"))
    kept = record("herd.generate")
    assert quiet.filter(kept) and kept.levelno == logging.INFO
