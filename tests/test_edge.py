"""The HTTP edge (``project.edge``): whatever reaches an API path gets an answer in that API's
error shape with its status, never Django's HTML page: unrouted paths, bodies nested too deeply
for a JSON parser, bodies over the limit, and exceptions nobody expected."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from asgiref.sync import async_to_sync
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.test import RequestFactory

from project.edge import fallback
from project.edge.endpoint import api_endpoint
from project.edge.families import OLLAMA, OPENAI
from tests.conftest import LIVE_MAX_BODY
from tests.inprocess import InProcessServer

# Far deeper than Python's JSON parser recurses (it raises RecursionError past about 1,000).
DEEP = "[" * 50_000 + "]" * 50_000

OPENAI_POSTS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/batches"]
OLLAMA_POSTS = [
    "/api/chat",
    "/api/generate",
    "/api/embed",
    "/api/embeddings",
    "/api/show",
    "/api/pull",
    "/api/create",
    "/api/copy",
]


def assert_openai_error(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return dict(error)


def assert_ollama_error(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    return str(body["error"])


@pytest.mark.parametrize(
    "path",
    [
        "/v1/nothing",
        "/v1/chat/completions/extra",
        "/v1/files/..%2F..%2Fetc%2Fpasswd",
        "/v1/%2E%2E/x",
    ],
)
def test_an_unrouted_v1_path_is_openais_404(web: InProcessServer, path: str) -> None:
    for method in ("GET", "POST"):
        reply = web.request(method, f"{web.base_url}{path}", timeout=30)
        error = assert_openai_error(reply, 404)
        assert error["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/nothing", "/api/chat/extra", "/api/..%2F..%2Fadmin"])
def test_an_unrouted_api_path_is_ollamas_404(web: InProcessServer, path: str) -> None:
    for method in ("GET", "POST", "DELETE"):
        reply = web.request(method, f"{web.base_url}{path}", timeout=30)
        assert "no such endpoint" in assert_ollama_error(reply, 404)


def test_pages_keep_djangos_own_404(web: InProcessServer) -> None:
    reply = web.get(f"{web.base_url}/no-such-page/", timeout=30)
    assert reply.status_code == 404
    assert not reply.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize("path", OPENAI_POSTS)
def test_a_deeply_nested_body_is_a_400_on_every_openai_post(
    web: InProcessServer, path: str
) -> None:
    body = '{"model": "tiny", "input": ' + DEEP + "}"
    headers = {"content-type": "application/json"}
    reply = web.post(f"{web.base_url}{path}", content=body, headers=headers, timeout=60)
    assert "nested too deeply" in assert_openai_error(reply, 400)["message"]


@pytest.mark.parametrize("path", OLLAMA_POSTS)
def test_a_deeply_nested_body_is_a_400_on_every_ollama_post(
    web: InProcessServer, path: str
) -> None:
    body = '{"model": "tiny", "messages": ' + DEEP + "}"
    headers = {"content-type": "application/json"}
    reply = web.post(f"{web.base_url}{path}", content=body, headers=headers, timeout=60)
    assert "nested too deeply" in assert_ollama_error(reply, 400)


def test_a_deeply_nested_delete_body_is_a_400(web: InProcessServer) -> None:
    body = '{"model": ' + DEEP + "}"
    reply = web.request("DELETE", f"{web.base_url}/api/delete", content=body, timeout=60)
    assert "nested too deeply" in assert_ollama_error(reply, 400)


def test_a_batch_body_over_the_limit_is_openais_413(web: InProcessServer) -> None:
    body = json.dumps({"input_file_id": "x" * (LIVE_MAX_BODY + 10), "endpoint": "/v1/completions"})
    headers = {"content-type": "application/json"}
    reply = web.post(f"{web.base_url}/v1/batches", content=body, headers=headers, timeout=60)
    assert assert_openai_error(reply, 413)["code"] == "request_too_large"


def _failing_view(family: str) -> Any:
    @api_endpoint(family, "GET")
    async def view(request: HttpRequest) -> HttpResponseBase:
        raise RuntimeError("nobody expected this")

    return view


@pytest.mark.parametrize("family", [OPENAI, OLLAMA])
def test_an_unexpected_exception_is_a_json_500_with_the_request_id(
    family: str, caplog: pytest.LogCaptureFixture
) -> None:
    request = RequestFactory().get("/v1/x", HTTP_X_REQUEST_ID="req-edge-12345")
    response = async_to_sync(_failing_view(family))(request)
    assert response.status_code == 500
    assert response["X-Request-Id"] == "req-edge-12345"
    body = json.loads(response.content)
    message = body["error"]["message"] if family == OPENAI else body["error"]
    assert "req-edge-12345" in message
    assert "nobody expected this" not in message  # the traceback goes to the log, not out
    logged = [r for r in caplog.records if "req-edge-12345" in r.getMessage()]
    assert logged and logged[0].exc_info is not None


def test_an_error_django_catches_outside_any_view_is_json_on_api_paths() -> None:
    request = RequestFactory().get("/api/tags")
    try:
        raise RuntimeError("in a middleware, say")
    except RuntimeError:
        response = fallback.server_error(request)
    assert response.status_code == 500
    assert "internal error" in json.loads(response.content)["error"]  # type: ignore[attr-defined]
    page = RequestFactory().get("/ui/")
    try:
        raise RuntimeError("on a page")
    except RuntimeError:
        assert not fallback.server_error(page)["Content-Type"].startswith("application/json")
