"""Errors under ``/v1/messages`` in Anthropic's shape, ``{"type": "error", "error": {"type",
"message"}}``, with Anthropic's types and statuses: bad input through the official client
(which raises the error class of each status), and what the client cannot send (invalid
JSON, other methods, unrouted paths) over plain HTTP."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from inference_app.anthropic.format import MessageFormat
from inference_app.replies import WorkerError
from project.edge.families import ANTHROPIC, error_body
from project.errors import ApiError
from tests.conftest import LIVE_MAX_BODY
from tests.inprocess import InProcessServer
from tests.live import LiveServer
from workers.broker.wire import Error

HELLO: list[Any] = [{"role": "user", "content": "hello"}]
DEEP_SCHEMA: Any = {"type": "object"}
for _ in range(40):
    DEEP_SCHEMA = {"type": "object", "properties": {"x": DEEP_SCHEMA}}
TOOL: Any = {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}


@pytest.fixture
def claude(web: InProcessServer) -> anthropic.Anthropic:
    """The client of the web process in this one: for the errors it answers alone."""
    return anthropic.Anthropic(
        base_url=web.base_url,
        api_key="unused",
        max_retries=0,
        timeout=60,
        http_client=web.http_client(),
    )


@pytest.fixture
def live_claude(server: LiveServer) -> anthropic.Anthropic:
    """The client of the live server: for the errors a worker answers."""
    return anthropic.Anthropic(
        base_url=server.base_url, api_key="unused", max_retries=0, timeout=60
    )


def anthropic_error(body: Any, kind: str) -> str:
    """The message of an Anthropic error ``body`` of type ``kind``."""
    assert isinstance(body, dict) and body["type"] == "error", body
    assert set(body["error"]) == {"type", "message"}
    assert body["error"]["type"] == kind
    return str(body["error"]["message"])


def post(claude: anthropic.Anthropic, body: dict[str, Any], path: str = "/v1/messages") -> Any:
    """A body the client's typed methods would not send, sent by the client all the same."""
    return claude.post(path, body=body, cast_to=object)


def bad_request(
    claude: anthropic.Anthropic, body: dict[str, Any], path: str = "/v1/messages"
) -> str:
    with pytest.raises(anthropic.BadRequestError) as raised:
        post(claude, body, path)
    assert raised.value.status_code == 400
    return anthropic_error(raised.value.body, "invalid_request_error")


def test_max_tokens_is_required(live_claude: anthropic.Anthropic) -> None:
    message = bad_request(live_claude, {"model": "tiny", "messages": HELLO})
    assert message.startswith("max_tokens:")
    assert "max_tokens: " in bad_request(
        live_claude, {"model": "tiny", "messages": HELLO, "max_tokens": 0}
    )
    # count_tokens has none: the same body is counted.
    assert post(live_claude, {"model": "tiny", "messages": HELLO}, "/v1/messages/count_tokens")


def test_a_tool_result_must_answer_an_earlier_tool_use(claude: anthropic.Anthropic) -> None:
    orphan = [
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_nobody", "content": "x"}],
        }
    ]
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        message = bad_request(claude, {"model": "tiny", "max_tokens": 4, "messages": orphan}, path)
        assert message.startswith("messages.0.content.0.tool_use_id:")
        assert "toolu_nobody" in message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ([{"type": "bogus", "text": "x"}], "messages.0.content.0.type: unknown content block type"),
        (
            [{"type": "text", "text": "see"}, {"type": "image", "source": {}}],
            "messages.0.content.1.source.type:",
        ),
        ([{"text": "no type"}], "messages.0.content.0: a content block must be an object"),
        ([{"type": "text"}], "messages.0.content.0.text:"),
        (
            [{"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}}],
            "messages.0.content.0: a user message cannot hold tool_use blocks",
        ),
        (
            [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "image"}]}],
            "messages.0.content.0.content.0: a tool result's content block must be text",
        ),
        (42, "messages.0.content: must be a string or a list of content blocks"),
    ],
    ids=["unknown", "image", "untyped", "textless", "misplaced", "result-image", "number"],
)
def test_bad_content_blocks_are_400s(claude: anthropic.Anthropic, content: Any, says: str) -> None:
    body = {"model": "tiny", "max_tokens": 4, "messages": [{"role": "user", "content": content}]}
    assert bad_request(claude, body).startswith(says)


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"temperature": 1.5}, "temperature:"),
        ({"top_p": -0.1}, "top_p:"),
        ({"top_k": "many"}, "top_k:"),
        ({"stop_sequences": "END"}, "stop_sequences:"),
        ({"system": [{"type": "image"}]}, "system.0.type:"),
        ({"system": 3}, "system:"),
        ({"messages": []}, "messages:"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages.0.role:"),
        ({"tools": [{"name": "bad name!", "input_schema": {}}]}, "tools.0.name:"),
        ({"tools": [{"name": "f"}]}, "tools.0.input_schema:"),
        (
            {"tools": [{"type": "web_search_20250305", "name": "web_search"}]},
            "tools.0.type:",
        ),
        ({"tool_choice": {"type": "any"}}, "tool_choice: 'any' needs tools"),
        ({"tools": [TOOL], "tool_choice": {"type": "tool"}}, "tool_choice.name:"),
        (
            {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "other"}},
            "tool_choice: names 'other', which is not among the tools",
        ),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type:"),
        ({"stream": "yes please"}, "stream:"),
        ({"model": 7}, "model:"),
        ({"max_tokens": 2**63}, "max_tokens:"),
        ({"top_k": 10**12}, "top_k:"),
        ({"stop_sequences": [f"s{i}" for i in range(17)]}, "stop_sequences:"),
        ({"metadata": {"user_id": 12345}}, "metadata.user_id:"),
        ({"tools": [{"name": "f", "input_schema": DEEP_SCHEMA}]}, "tools.0.input_schema:"),
    ],
)
def test_bad_fields_are_400s_that_name_them(
    claude: anthropic.Anthropic, fields: dict[str, Any], says: str
) -> None:
    body = {"model": "tiny", "max_tokens": 4, "messages": HELLO, **fields}
    assert bad_request(claude, body).startswith(says)


def test_an_unknown_model_is_not_found(claude: anthropic.Anthropic) -> None:
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        with pytest.raises(anthropic.NotFoundError) as raised:
            post(claude, {"model": "no-such-model", "max_tokens": 4, "messages": HELLO}, path)
        assert "no-such-model" in anthropic_error(raised.value.body, "not_found_error")


def test_a_prompt_over_the_context_is_a_400(live_claude: anthropic.Anthropic) -> None:
    long: Any = [{"role": "user", "content": "word " * 6000}]
    with pytest.raises(anthropic.BadRequestError) as raised:
        live_claude.messages.create(model="tiny", max_tokens=4, messages=long)
    assert "maximum context length" in anthropic_error(raised.value.body, "invalid_request_error")
    # Streamed, too: the worker refuses before the stream begins.
    with pytest.raises(anthropic.BadRequestError):
        live_claude.messages.create(model="tiny", max_tokens=4, messages=long, stream=True)


def test_a_body_over_the_limit_is_request_too_large(claude: anthropic.Anthropic) -> None:
    huge: Any = [{"role": "user", "content": "x" * (LIVE_MAX_BODY + 10)}]
    with pytest.raises(anthropic.APIStatusError) as raised:
        claude.messages.create(model="tiny", max_tokens=4, messages=huge)
    assert raised.value.status_code == 413
    anthropic_error(raised.value.body, "request_too_large")


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"", "not valid"),
        (
            b'{"model": "tiny", "max_tokens": 4, '
            b'"messages": [{"role": "user", "content": "\\ud800"}]}',
            "messages.0.content: contains a lone surrogate",
        ),
        (b'{"model": "tiny", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
    ],
    ids=["not-json", "not-an-object", "empty", "lone-surrogate", "nested-past-the-parser"],
)
def test_a_body_that_is_not_a_readable_json_object_is_a_400(
    web: InProcessServer, raw: bytes, says: str
) -> None:
    reply = web.post(
        f"{web.base_url}/v1/messages",
        content=raw,
        headers={"content-type": "application/json"},
        timeout=30,
    )
    assert reply.status_code == 400
    assert says in anthropic_error(reply.json(), "invalid_request_error")


def test_other_methods_are_405s(web: InProcessServer) -> None:
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        reply = web.get(f"{web.base_url}{path}", timeout=30)
        assert reply.status_code == 405
        assert "GET" in anthropic_error(reply.json(), "invalid_request_error")


@pytest.mark.parametrize(
    "path", ["/v1/messages/batches", "/v1/messages/count_tokens/more", "/v1/messages/%2e%2e/x"]
)
def test_an_unrouted_path_under_messages_is_not_found(web: InProcessServer, path: str) -> None:
    reply = web.post(f"{web.base_url}{path}", json={}, timeout=30)
    assert reply.status_code == 404
    assert "no such endpoint" in anthropic_error(reply.json(), "not_found_error")


def test_the_rest_of_v1_keeps_openais_shape(web: InProcessServer) -> None:
    reply = web.post(f"{web.base_url}/v1/messagesx", json={}, timeout=30)
    assert reply.status_code == 404
    assert set(reply.json()) == {"error"} and reply.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (503, "overloaded_error"),
        (507, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_each_status_has_anthropics_error_type(status: int, kind: str) -> None:
    body = error_body(ANTHROPIC, ApiError("why", status=status, error_type="server_error"))
    assert body == {"type": "error", "error": {"type": kind, "message": "why"}}


def test_an_error_mid_stream_is_an_error_event() -> None:
    lost = Error("worker w1 stopped while serving this request", status=503, code="worker_lost")
    event = MessageFormat("r1", "tiny").stream_error(WorkerError(lost))
    assert event == (
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error",'
        b'"message":"worker w1 stopped while serving this request"}}\n\n'
    )
