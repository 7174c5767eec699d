"""API keys on /v1, /api and /metrics: every refusal, in each API's own error shape."""

from __future__ import annotations

import time

import httpx

from tests.keyed import KeyedServer, KeyedWeb
from tests.waiting import wait_until


def assert_openai_error(reply: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code
    return dict(error)


def test_a_request_without_a_key_gets_401_in_openai_shape(keyed_web: KeyedWeb) -> None:
    reply = keyed_web.call("GET", "/v1/models", None)
    error = assert_openai_error(reply, 401, "missing_api_key")
    assert "Authorization" in str(error["message"])
    assert reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_request_without_a_key_gets_401_in_ollama_shape(keyed_web: KeyedWeb) -> None:
    for method, path in (("GET", "/api/tags"), ("POST", "/api/generate")):
        reply = keyed_web.call(method, path, None, json={"model": "tiny", "prompt": "hi"})
        assert reply.status_code == 401
        assert set(reply.json()) == {"error"}
        assert "API key" in reply.json()["error"]


def test_an_unknown_key_gets_401(keyed_web: KeyedWeb) -> None:
    reply = keyed_web.call("GET", "/v1/models", "herd-not-a-key-anybody-has")
    assert_openai_error(reply, 401, "invalid_api_key")


def test_a_valid_key_is_accepted_as_bearer_or_x_api_key(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("plain")
    assert keyed_server.call("GET", "/v1/models", secret).status_code == 200
    reply = keyed_server.call("GET", "/v1/models", None, headers={"x-api-key": secret})
    assert reply.status_code == 200
    assert keyed_server.complete(secret).status_code == 200


def test_an_expired_key_gets_401(keyed_web: KeyedWeb) -> None:
    secret = keyed_web.create_key("old", "--expires", "2020-01-01")
    error = assert_openai_error(keyed_web.complete(secret), 401, "invalid_api_key")
    assert "expired" in str(error["message"])


def test_a_key_stops_working_when_it_expires(keyed_web: KeyedWeb) -> None:
    expires = time.time() + 3
    soon = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(expires))
    # Made over the API, which is quicker than starting `herd keys` on a busy machine.
    created = keyed_web.call(
        "POST", "/herd/keys", keyed_web.staff_secret, json={"name": "brief", "expires_at": soon}
    )
    assert created.status_code == 201
    secret = created.json()["secret"]
    assert keyed_web.call("GET", "/v1/models", secret).status_code == 200
    wait_until(
        lambda: keyed_web.call("GET", "/v1/models", secret).status_code == 401,
        max(0.0, expires - time.time()) + 30,
        "the key expired",
    )
    error = assert_openai_error(keyed_web.call("GET", "/v1/models", secret), 401, "invalid_api_key")
    assert "expired" in str(error["message"])


def test_a_revoked_key_gets_401_within_the_cache_time(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("to-revoke")
    assert keyed_server.complete(secret).status_code == 200
    keyed_server.herd("keys", "revoke", "to-revoke")
    error = assert_openai_error(keyed_server.complete(secret), 401, "invalid_api_key")
    assert "revoked" in str(error["message"])
    assert keyed_server.call("GET", "/api/tags", secret).status_code == 401


def test_the_key_of_a_deactivated_user_gets_401(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("leaver", "--user", "leaver")
    assert keyed_server.call("GET", "/v1/models", secret).status_code == 200
    keyed_server.herd(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.filter(username='leaver').update(is_active=False)",
    )
    error = assert_openai_error(
        keyed_server.call("GET", "/v1/models", secret), 401, "invalid_api_key"
    )
    assert "deactivated" in str(error["message"])


def test_a_key_limited_to_some_models_gets_403_for_others(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("tiny-only", "--models", "tiny")
    assert keyed_server.complete(secret, model="tiny").status_code == 200
    assert keyed_server.complete(secret, model="tiny:latest").status_code == 200
    error = assert_openai_error(
        keyed_server.complete(secret, model="slow"), 403, "model_not_allowed"
    )
    assert error["type"] == "permission_error"
    chat = keyed_server.call(
        "POST",
        "/v1/chat/completions",
        secret,
        json={"model": "slow", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert_openai_error(chat, 403, "model_not_allowed")
    ollama = keyed_server.call("POST", "/api/generate", secret, json={"model": "slow"})
    assert ollama.status_code == 403
    assert ollama.json() == {"error": "this API key may not use the model 'slow'"}


def test_a_key_limited_to_some_models_sees_only_those(keyed_web: KeyedWeb) -> None:
    secret = keyed_web.create_key("sees-tiny", "--models", "tiny")
    listed = keyed_web.call("GET", "/v1/models", secret).json()
    assert [m["id"] for m in listed["data"]] == ["tiny:latest"]
    assert keyed_web.call("GET", "/v1/models/tiny", secret).status_code == 200
    assert_openai_error(keyed_web.call("GET", "/v1/models/slow", secret), 404, "model_not_found")
    tags = keyed_web.call("GET", "/api/tags", secret).json()
    assert [m["name"] for m in tags["models"]] == ["tiny:latest"]
    everything = keyed_web.call("GET", "/v1/models", keyed_web.staff_secret).json()
    assert {"tiny:latest", "slow:latest"} <= {m["id"] for m in everything["data"]}


def test_managing_models_needs_a_staff_key(keyed_web: KeyedWeb) -> None:
    secret = keyed_web.create_key("not-staff")
    reply = keyed_web.call("POST", "/api/pull", secret, json={"model": "tiny"})
    assert reply.status_code == 403
    assert "staff" in reply.json()["error"]
    reply = keyed_web.call("DELETE", "/api/delete", secret, json={"model": "nothing-here"})
    assert reply.status_code == 403
    # A staff key gets past the key check (and to the view, which finds no such model).
    staff = keyed_web.call(
        "DELETE", "/api/delete", keyed_web.staff_secret, json={"model": "nothing-here"}
    )
    assert staff.status_code not in (401, 403)


def test_metrics_needs_a_key(keyed_server: KeyedServer) -> None:
    assert keyed_server.call("GET", "/metrics", None).status_code == 401
    assert keyed_server.call("GET", "/metrics", "herd-wrong").status_code == 401
    reply = keyed_server.call("GET", "/metrics", keyed_server.staff_secret)
    assert reply.status_code == 200
    assert "herd_requests_total" in reply.text


def test_pages_outside_the_apis_need_no_key(keyed_web: KeyedWeb) -> None:
    assert keyed_web.call("GET", "/", None).status_code == 200
    assert keyed_web.call("GET", "/openapi.json", None).status_code == 200


def test_file_uploads_pass_the_key_check(keyed_web: KeyedWeb) -> None:
    secret = keyed_web.create_key("uploader", "--models", "tiny")
    line = b'{"custom_id": "a", "method": "POST", "url": "/v1/completions", "body": {}}\n'
    reply = keyed_web.call(
        "POST",
        "/v1/files",
        secret,
        data={"purpose": "batch"},
        files={"file": ("lines.jsonl", line, "application/jsonl")},
    )
    assert reply.status_code == 200, reply.text
    anonymous = keyed_web.call("POST", "/v1/files", None, data={"purpose": "batch"})
    assert anonymous.status_code == 401
