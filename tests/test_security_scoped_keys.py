"""A key scoped to one model reaches no other, however the request is dressed: the model
check reads the body the view will parse, a JSON endpoint refuses any other declared content
type (415, in its family's shape), and every model a body names is checked: batch lines,
``/api/copy``'s ``source``, ``/api/create``'s ``from`` and the model of a
``previous_response_id``."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.isolation import (
    another_key,
    chat_line,
    create_batch,
    new_member,
    upload_batch_input,
    wait_for_batch,
)
from tests.keyed import KeyedServer

pytestmark = pytest.mark.live

HELLO = [{"role": "user", "content": "hello"}]
# Each endpoint that runs a model, with a body naming the model the key may not use.
FORBIDDEN_CALLS: list[tuple[str, dict[str, Any]]] = [
    ("/v1/chat/completions", {"model": "slow", "messages": HELLO, "max_tokens": 2}),
    ("/v1/completions", {"model": "slow", "prompt": "hello", "max_tokens": 2}),
    ("/v1/embeddings", {"model": "slow", "input": "hello"}),
    ("/v1/responses", {"model": "slow", "input": "hello", "max_output_tokens": 16}),
    ("/v1/messages", {"model": "slow", "messages": HELLO, "max_tokens": 2}),
    ("/api/chat", {"model": "slow", "messages": HELLO, "stream": False}),
    ("/api/generate", {"model": "slow", "prompt": "hello", "stream": False}),
    ("/api/embed", {"model": "slow", "input": "hello"}),
    ("/api/show", {"model": "slow"}),
]
DISGUISES = ("multipart/form-data; boundary=x", "multipart/mixed; boundary=x", "text/plain")


@pytest.fixture(scope="module")
def tiny_only(keyed_server: KeyedServer) -> str:
    return new_member(keyed_server, "--models", "tiny").secret


def assert_family_error(path: str, reply: httpx.Response, status: int) -> str:
    """The error's message, after checking the reply is ``status`` in ``path``'s shape."""
    assert reply.status_code == status, (path, reply.status_code, reply.text)
    body = reply.json()
    if path.startswith("/v1/messages"):
        assert body["type"] == "error", body
        return str(body["error"]["message"])
    if path.startswith("/v1/"):
        assert set(body["error"]) == {"message", "type", "param", "code"}, body
        return str(body["error"]["message"])
    assert set(body) == {"error"} and isinstance(body["error"], str), body
    return str(body["error"])


def test_a_scoped_key_cannot_use_another_model_by_declaring_another_content_type(
    keyed_server: KeyedServer, tiny_only: str
) -> None:
    for path, body in FORBIDDEN_CALLS:
        as_json = keyed_server.call("POST", path, tiny_only, json=body)
        assert "slow" in assert_family_error(path, as_json, 403)
        for content_type in DISGUISES:
            disguised = keyed_server.call(
                "POST",
                path,
                tiny_only,
                content=json.dumps(body).encode(),
                headers={"Content-Type": content_type},
            )
            message = assert_family_error(path, disguised, 415)
            assert "application/json" in message
        # curl -d's form declaration is read as JSON: the model check sees the same body.
        as_curl_sends_it = keyed_server.call(
            "POST",
            path,
            tiny_only,
            content=json.dumps(body).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert "slow" in assert_family_error(path, as_curl_sends_it, 403)


def test_the_scoped_key_still_uses_its_own_model(keyed_server: KeyedServer, tiny_only: str) -> None:
    body = {"model": "tiny", "messages": HELLO, "max_tokens": 2}
    reply = keyed_server.call("POST", "/v1/chat/completions", tiny_only, json=body)
    assert reply.status_code == 200, reply.text
    # A JSON media type with parameters, or a +json one, is JSON.
    for content_type in ("application/json; charset=utf-8", "application/vnd.herd+json"):
        reply = keyed_server.call(
            "POST",
            "/v1/chat/completions",
            tiny_only,
            content=json.dumps(body).encode(),
            headers={"Content-Type": content_type},
        )
        assert reply.status_code == 200, (content_type, reply.text)


def test_a_batch_line_for_another_model_fails_the_batch_and_nothing_runs(
    keyed_server: KeyedServer, tiny_only: str
) -> None:
    lines = [chat_line("allowed", "tiny"), chat_line("smuggled", "slow")]
    file_id = upload_batch_input(keyed_server, tiny_only, lines)
    created = create_batch(keyed_server, tiny_only, file_id)
    assert created.status_code == 200, created.text
    batch = wait_for_batch(keyed_server, tiny_only, created.json()["id"], ("failed",), 30)
    (error,) = batch["errors"]["data"]
    assert error["code"] == "model_not_allowed" and error["line"] == 2
    assert batch["request_counts"]["total"] == 0


def test_a_scoped_staff_key_cannot_copy_or_create_from_another_model(
    keyed_server: KeyedServer,
) -> None:
    fork = f"forked-{uuid.uuid4().hex[:6]}"
    # The key may make ``fork``, from ``tiny`` only.
    allowed = ["tiny", f"{fork}:latest"]
    staff = keyed_server.call(
        "POST",
        "/herd/keys",
        keyed_server.staff_secret,
        json={"name": f"staff-tiny-{uuid.uuid4().hex[:6]}", "allowed_models": allowed},
    )
    assert staff.status_code == 201, staff.text
    secret = staff.json()["secret"]
    copy = {"source": "slow", "destination": f"stolen-{uuid.uuid4().hex[:6]}"}
    reply = keyed_server.call("POST", "/api/copy", secret, json=copy)
    assert "slow" in assert_family_error("/api/copy", reply, 403)
    create = {"model": fork, "from": "slow", "stream": False}
    reply = keyed_server.call("POST", "/api/create", secret, json=create)
    assert "slow" in assert_family_error("/api/create", reply, 403)
    tags = keyed_server.call("GET", "/api/tags", keyed_server.staff_secret).json()
    names = {model["name"].split(":")[0] for model in tags["models"]}
    assert copy["destination"] not in names and create["model"] not in names


def test_a_scoped_key_cannot_continue_a_response_of_another_model(
    keyed_server: KeyedServer,
) -> None:
    anyone = new_member(keyed_server)
    scoped = another_key(keyed_server, anyone, allowed_models=["tiny"])
    first = keyed_server.call(
        "POST",
        "/v1/responses",
        anyone.secret,
        json={"model": "slow", "input": "hello", "max_output_tokens": 16},
    )
    assert first.status_code == 200, first.text
    follow = {
        "model": "tiny",
        "input": "and then?",
        "max_output_tokens": 16,
        "previous_response_id": first.json()["id"],
    }
    reply = keyed_server.call("POST", "/v1/responses", scoped.secret, json=follow)
    error = reply.json()["error"]
    assert reply.status_code == 403 and error["code"] == "model_not_allowed", reply.text
    assert error["param"] == "previous_response_id"
    # The same user's unscoped key continues it.
    assert keyed_server.call("POST", "/v1/responses", anyone.secret, json=follow).status_code == 200
