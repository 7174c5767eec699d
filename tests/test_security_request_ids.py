"""A request id belongs to the key that made the request: another key that sends the same
``X-Request-Id`` (or the id it saw in a response) gets a request of its own, never the first
one's answer, and ``/api/status?request_id=`` tells only that key (and staff) where a request
stands."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.isolation import new_member
from tests.keyed import KeyedServer
from workers.broker.wire import Done, decode

pytestmark = pytest.mark.live

ALICE_PROMPT = "a long and private question " * 12


def complete(
    server: KeyedServer, secret: str, request_id: str, prompt: str = "hello"
) -> httpx.Response:
    body = {"model": "tiny", "prompt": prompt, "max_tokens": 4}
    headers = {"X-Request-Id": request_id}
    return server.call("POST", "/v1/completions", secret, json=body, headers=headers)


def test_another_key_sending_the_same_request_id_gets_its_own_answer(
    keyed_server: KeyedServer,
) -> None:
    alice, bob = new_member(keyed_server), new_member(keyed_server)
    asked = f"shared-{uuid.uuid4().hex[:12]}"
    first = complete(keyed_server, alice.secret, asked, ALICE_PROMPT)
    assert first.status_code == 200, first.text
    alice_id = first.headers["x-request-id"]
    assert asked in alice_id
    # Bob sends the id Alice chose, then the one the server answered her with: each time a
    # request of his own, answered for his prompt.
    for replayed in (asked, alice_id, first.json()["id"].removeprefix("cmpl-")):
        second = complete(keyed_server, bob.secret, replayed, "hi")
        assert second.status_code == 200, second.text
        assert second.headers["x-request-id"] != alice_id
        assert second.json()["usage"]["prompt_tokens"] < first.json()["usage"]["prompt_tokens"]
    # Alice's own stream holds her answer alone.
    entries: Any = keyed_server.redis().xrange(f"{keyed_server.namespace}:req:{alice_id}")
    events = [decode(fields[b"e"]) for _, fields in entries]
    assert sum(isinstance(event, Done) for event in events) == 1


def test_where_a_request_stands_is_told_to_its_key_and_staff_only(
    keyed_server: KeyedServer,
) -> None:
    alice, bob = new_member(keyed_server), new_member(keyed_server)
    asked = f"status-{uuid.uuid4().hex[:12]}"
    reply = complete(keyed_server, alice.secret, asked)
    assert reply.status_code == 200, reply.text
    server_id = reply.headers["x-request-id"]
    for path in ("/api/status", "/v1/status"):
        for request_id in (asked, server_id):
            mine = keyed_server.call("GET", path, alice.secret, params={"request_id": request_id})
            assert mine.status_code == 200, mine.text
            assert mine.json()["state"] == "done"
            theirs = keyed_server.call("GET", path, bob.secret, params={"request_id": request_id})
            assert theirs.status_code == 404, theirs.text
        staff = keyed_server.call(
            "GET", path, keyed_server.staff_secret, params={"request_id": server_id}
        )
        assert staff.status_code == 200 and staff.json()["state"] == "done", staff.text
