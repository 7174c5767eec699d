"""Input no client library sends, sent raw: each gets a 4xx in its API's own error shape
(OpenAI's ``{"error": {"message", "type", "param", "code"}}`` naming the field, Ollama's
``{"error": "..."}``), never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.http_methods import RequestMethods
from tests.inprocess import InProcessServer
from tests.live import LiveServer

HELLO = [{"role": "user", "content": "hi"}]


def deep_schema(depth: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    for _ in range(depth):
        schema = {"type": "array", "items": schema}
    return schema


def post_raw(server: RequestMethods, path: str, text: str) -> httpx.Response:
    return server.post(
        f"{server.base_url}{path}",
        content=text.encode(),
        headers={"Content-Type": "application/json"},
        timeout=60,
    )


def assert_openai_400(response: httpx.Response, param: str) -> None:
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param, error


def assert_ollama_400(response: httpx.Response, mentions: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"error"} and isinstance(body["error"], str)
    assert mentions in body["error"], body


def chat(**fields: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": HELLO, "max_tokens": 4, **fields}


def tool(parameters: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": {"name": "f", "parameters": parameters}}


OPENAI_CASES: list[tuple[str, str, dict[str, Any], str]] = [
    (
        "a 600-deep json_schema",
        "/v1/chat/completions",
        chat(
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "deep", "schema": deep_schema(600)},
            }
        ),
        "response_format.json_schema.schema",
    ),
    (
        "600-deep tool parameters",
        "/v1/chat/completions",
        chat(tools=[tool(deep_schema(600))]),
        "tools.0.function.parameters",
    ),
    (
        "an empty prompt list",
        "/v1/completions",
        {"model": "tiny", "prompt": []},
        "prompt",
    ),
    (
        "a tool call without function",
        "/v1/chat/completions",
        chat(
            messages=[
                *HELLO,
                {"role": "assistant", "tool_calls": [{"id": "c", "type": "function"}]},
            ]
        ),
        "messages.1.tool_calls.0.function",
    ),
    (
        "a tool call without a name",
        "/v1/chat/completions",
        chat(
            messages=[
                *HELLO,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"arguments": "{}"}}
                    ],
                },
            ]
        ),
        "messages.1.tool_calls.0.function.name",
    ),
    ("max_tokens 2**63", "/v1/chat/completions", chat(max_tokens=2**63), "max_tokens"),
    (
        "max_tokens 1e30",
        "/v1/completions",
        {"model": "tiny", "prompt": "a", "max_tokens": 1e30},
        "max_tokens",
    ),
    ("top_k 1e12", "/v1/chat/completions", chat(top_k=10**12), "top_k"),
    (
        "more than 2048 embedding inputs",
        "/v1/embeddings",
        {"model": "tiny", "input": ["a"] * 2049},
        "input",
    ),
    ("a 5000-character model name", "/v1/chat/completions", chat(model="m" * 5000), "model"),
    ("a numeric prompt", "/v1/completions", {"model": "tiny", "prompt": 12345}, "prompt"),
    ("a numeric user", "/v1/chat/completions", chat(user=12345), "user"),
    ("n over the limit", "/v1/chat/completions", chat(n=1000), "n"),
]
# What only the worker can check (it holds the model's vocabulary).
OPENAI_WORKER_CASES = [
    (
        "a token id out of range",
        "/v1/completions",
        {"model": "tiny", "prompt": [1, 999999]},
        "prompt",
    ),
]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [case[1:] for case in OPENAI_CASES],
    ids=[case[0] for case in OPENAI_CASES],
)
def test_openai_refuses_with_400_naming_the_param(
    web: InProcessServer, path: str, body: dict[str, Any], param: str
) -> None:
    assert_openai_400(post_raw(web, path, json.dumps(body)), param)


@pytest.mark.live
@pytest.mark.parametrize(
    ("path", "body", "param"),
    [case[1:] for case in OPENAI_WORKER_CASES],
    ids=[case[0] for case in OPENAI_WORKER_CASES],
)
def test_openai_refuses_with_400_naming_the_param_at_the_worker(
    server: LiveServer, path: str, body: dict[str, Any], param: str
) -> None:
    assert_openai_400(post_raw(server, path, json.dumps(body)), param)


# Lone surrogates: JSON can escape them, UTF-8 cannot encode them. ``json.dumps`` writes the
# escape as it stands.
SURROGATE = json.dumps("a\ud800b")


@pytest.mark.parametrize(
    ("path", "text", "param"),
    [
        (
            "/v1/chat/completions",
            f'{{"model": "tiny", "messages": [{{"role": "user", "content": {SURROGATE}}}]}}',
            "messages.0.content",
        ),
        ("/v1/completions", f'{{"model": "tiny", "prompt": {SURROGATE}}}', "prompt"),
        ("/v1/embeddings", f'{{"model": "tiny", "input": [{SURROGATE}]}}', "input.0"),
    ],
    ids=["content", "prompt", "input"],
)
def test_openai_refuses_lone_surrogates(
    web: InProcessServer, path: str, text: str, param: str
) -> None:
    assert_openai_400(post_raw(web, path, text), param)


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("/api/generate", f'{{"model": "tiny", "prompt": "hi", "system": {SURROGATE}}}'),
        (
            "/api/chat",
            f'{{"model": "tiny", "messages": [{{"role": "user", "content": {SURROGATE}}}]}}',
        ),
        ("/api/embed", f'{{"model": "tiny", "input": {SURROGATE}}}'),
    ],
    ids=["system", "content", "input"],
)
def test_ollama_refuses_lone_surrogates(web: InProcessServer, path: str, text: str) -> None:
    assert_ollama_400(post_raw(web, path, text), "lone surrogate")


OLLAMA_CASES: list[tuple[str, str, str, str]] = [
    (
        "a 600-deep format",
        "/api/generate",
        json.dumps({"model": "tiny", "prompt": "hi", "format": deep_schema(600)}),
        "format",
    ),
    (
        "a tool call without function",
        "/api/chat",
        json.dumps(
            {"model": "tiny", "messages": [*HELLO, {"role": "assistant", "tool_calls": [{}]}]}
        ),
        "function",
    ),
    (
        "a tool call without a name",
        "/api/chat",
        json.dumps(
            {
                "model": "tiny",
                "messages": [
                    *HELLO,
                    {"role": "assistant", "tool_calls": [{"function": {"arguments": {}}}]},
                ],
            }
        ),
        "name",
    ),
    (
        "num_ctx 1e12",
        "/api/generate",
        json.dumps({"model": "tiny", "prompt": "hi", "options": {"num_ctx": 1e12}}),
        "num_ctx",
    ),
    (
        "top_k 1e12",
        "/api/chat",
        json.dumps({"model": "tiny", "messages": HELLO, "options": {"top_k": 10**12}}),
        "top_k",
    ),
    (
        "keep_alive NaN",
        "/api/generate",
        '{"model": "tiny", "prompt": "hi", "keep_alive": NaN}',
        "keep_alive",
    ),
    (
        "an absurd keep_alive",
        "/api/generate",
        json.dumps({"model": "tiny", "prompt": "hi", "keep_alive": "99999999999999h"}),
        "keep_alive",
    ),
    (
        "keep_alive 1e300",
        "/api/embed",
        json.dumps({"model": "tiny", "input": "hi", "keep_alive": 1e300}),
        "keep_alive",
    ),
    (
        "more than 2048 embedding inputs",
        "/api/embed",
        json.dumps({"model": "tiny", "input": ["a"] * 2049}),
        "input",
    ),
    (
        "a 5000-character model name",
        "/api/chat",
        json.dumps({"model": "m" * 5000, "messages": HELLO}),
        "model",
    ),
    ("a numeric prompt", "/api/generate", json.dumps({"model": "tiny", "prompt": 12345}), "prompt"),
    (
        "a numeric think",
        "/api/chat",
        json.dumps({"model": "tiny", "messages": HELLO, "think": 12345}),
        "think",
    ),
]


@pytest.mark.parametrize(
    ("path", "text", "mentions"),
    [case[1:] for case in OLLAMA_CASES],
    ids=[case[0] for case in OLLAMA_CASES],
)
def test_ollama_refuses_with_400(web: InProcessServer, path: str, text: str, mentions: str) -> None:
    assert_ollama_400(post_raw(web, path, text), mentions)


GRAMMAR_REFUSED = [{"foo": {}}, {"": None}]


@pytest.mark.live
@pytest.mark.parametrize("schema", GRAMMAR_REFUSED, ids=["unknown-key", "empty-key"])
def test_a_schema_llama_cpp_cannot_convert_is_400_naming_response_format(
    server: LiveServer, schema: dict[str, Any]
) -> None:
    body = chat(
        response_format={"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    )
    response = post_raw(server, "/v1/chat/completions", json.dumps(body))
    assert_openai_400(response, "response_format.json_schema.schema")
    assert response.json()["error"]["code"] == "invalid_schema"


@pytest.mark.live
def test_tool_parameters_llama_cpp_cannot_convert_are_400_naming_tools(
    server: LiveServer,
) -> None:
    body = chat(tools=[tool({"foo": 1})], tool_choice="required")
    assert_openai_400(post_raw(server, "/v1/chat/completions", json.dumps(body)), "tools")


@pytest.mark.live
def test_an_ollama_format_llama_cpp_cannot_convert_is_400_naming_format(
    server: LiveServer,
) -> None:
    body = {"model": "tiny", "prompt": "hi", "stream": False, "format": {"foo": {}}}
    assert_ollama_400(post_raw(server, "/api/generate", json.dumps(body)), "format")


@pytest.mark.live
def test_the_server_still_answers_after_the_refusals(server: LiveServer) -> None:
    reply = httpx.post(f"{server.base_url}/v1/chat/completions", json=chat(), timeout=60)
    assert reply.status_code == 200, reply.text
