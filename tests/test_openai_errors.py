from __future__ import annotations

import time

import httpx
import pytest

from tests.conftest import LIVE_MAX_BODY
from tests.http_methods import RequestMethods
from tests.inprocess import InProcessServer
from tests.live import LiveServer

HELLO = [{"role": "user", "content": "hi"}]


def post(server: RequestMethods, path: str, body: object) -> httpx.Response:
    return server.post(f"{server.base_url}{path}", json=body, timeout=30)


def assert_openai_error(
    response: httpx.Response, status: int, param: str | None, code: str | None = None
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"]
    assert error["param"] == param
    if code is not None:
        assert error["code"] == code


def request_streams(server: LiveServer) -> set[str]:
    return {n.decode() for n in server.redis().scan_iter(f"{server.namespace}:req:*")}


def assert_nothing_enqueued_since(server: LiveServer, before: set[str]) -> None:
    """No request has reached a worker since ``before`` was read. A request sent now goes on
    the same lane, which the worker takes in order: once it is answered, the worker has
    started everything sent ahead of it, so its stream is the only new one."""
    marker = f"after-refused-{time.time_ns()}"
    answered = httpx.post(
        f"{server.base_url}/v1/completions",
        json={"model": "tiny", "prompt": "hi", "max_tokens": 1},
        headers={"X-Request-Id": marker},
        timeout=30,
    )
    assert answered.status_code == 200, answered.text
    new = request_streams(server) - before
    assert new == {f"{server.namespace}:req:{marker}"}, (
        "a request that failed validation was enqueued"
    )


def test_an_unknown_model_is_404_model_not_found(web: InProcessServer) -> None:
    response = post(web, "/v1/chat/completions", {"model": "ghost", "messages": HELLO})
    assert_openai_error(response, 404, "model", "model_not_found")
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/chat/completions", {"model": "tiny"}, "messages"),
        ("/v1/chat/completions", {"model": "tiny", "messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": HELLO}, "model"),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": [{"role": "wizard", "content": "x"}]},
            "messages.0.role",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": HELLO, "temperature": 5},
            "temperature",
        ),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": HELLO, "max_tokens": 0},
            "max_tokens",
        ),
        ("/v1/chat/completions", {"model": "tiny", "messages": HELLO, "top_p": "high"}, "top_p"),
        ("/v1/chat/completions", {"model": "tiny", "messages": HELLO, "stop": [1, 2]}, "stop"),
        ("/v1/chat/completions", {"model": "tiny", "messages": HELLO, "n": 17}, "n"),
        (
            "/v1/chat/completions",
            {"model": "tiny", "messages": HELLO, "response_format": {"type": "xml"}},
            "response_format.type",
        ),
        (
            "/v1/chat/completions",
            {
                "model": "tiny",
                "messages": HELLO,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "x", "schema": {"type": 12}},
                },
            },
            "response_format.json_schema.schema",
        ),
        ("/v1/completions", {"model": "tiny"}, "prompt"),
        (
            "/v1/completions",
            {"model": "tiny", "prompt": "x", "presence_penalty": 9},
            "presence_penalty",
        ),
        ("/v1/embeddings", {"model": "tiny"}, "input"),
        ("/v1/embeddings", {"model": "tiny", "input": [""]}, "input"),
        (
            "/v1/embeddings",
            {"model": "tiny", "input": "x", "encoding_format": "hex"},
            "encoding_format",
        ),
    ],
)
def test_an_invalid_parameter_is_400_naming_it(
    server: LiveServer, path: str, body: dict[str, object], param: str
) -> None:
    before = request_streams(server)
    assert_openai_error(post(server, path, body), 400, param)
    assert_nothing_enqueued_since(server, before)


def test_a_body_that_is_not_json_is_400(web: InProcessServer) -> None:
    response = web.post(
        f"{web.base_url}/v1/chat/completions",
        content=b"{nope",
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert_openai_error(response, 400, None, "invalid_json")


def test_a_body_over_the_limit_is_413(web: InProcessServer) -> None:
    huge = [{"role": "user", "content": "x" * (LIVE_MAX_BODY + 10)}]
    response = post(web, "/v1/chat/completions", {"model": "tiny", "messages": huge})
    assert_openai_error(response, 413, None, "request_too_large")


def test_a_prompt_longer_than_the_context_is_400(server: LiveServer) -> None:
    long_prompt = "hello " * 5000  # about 5000 tokens against a 4096-token context
    response = post(server, "/v1/completions", {"model": "tiny", "prompt": long_prompt})
    assert_openai_error(response, 400, "prompt", "context_length_exceeded")
    response = post(
        server,
        "/v1/chat/completions",
        {"model": "tiny", "messages": [{"role": "user", "content": long_prompt}], "stream": True},
    )
    assert_openai_error(response, 400, "messages", "context_length_exceeded")


def test_a_wrong_method_is_405(web: InProcessServer) -> None:
    response = web.get(f"{web.base_url}/v1/chat/completions", timeout=30)
    assert_openai_error(response, 405, None)
