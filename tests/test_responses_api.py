"""``POST /v1/responses`` through the official openai client: the response object, its
stream of typed events, function calls, structured output, and bad requests.

Every object and event is also validated strictly against the client's own types (pydantic,
with serialization warnings as errors), so that a field of the wrong type or a status the
client does not know fails here rather than as a warning in someone's application."""

from __future__ import annotations

import json
import time
import warnings
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response, ResponseOutputMessage, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.inprocess import InProcessServer
from tests.live import LiveServer

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]}},
    "required": ["city"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": WEATHER,
        "strict": True,
    }
]
# The fields OpenAI's document requires of a Response (``Response.required``, in
# github.com/openai/openai-openapi openapi.yaml at f85dbe22).
REQUIRED = {
    "id",
    "object",
    "created_at",
    "error",
    "incomplete_details",
    "instructions",
    "model",
    "tools",
    "output",
    "parallel_tool_calls",
    "metadata",
    "tool_choice",
    "temperature",
    "top_p",
}
EVENTS: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)


def strict_response(raw: dict[str, Any]) -> Response:
    """``raw`` as the client's Response type, validated, with no serialization warning."""
    assert set(raw) >= REQUIRED, REQUIRED - set(raw)
    parsed = Response.model_validate(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parsed.model_dump(warnings="error")
    return parsed


def strict_event(raw: dict[str, Any]) -> Any:
    event = EVENTS.validate_python(raw)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        event.model_dump(warnings="error")
    if "response" in raw:
        strict_response(raw["response"])
    return event


def create_raw(client: OpenAI, **fields: Any) -> dict[str, Any]:
    fields.setdefault("model", "tiny")
    reply = client.responses.with_raw_response.create(**fields)
    body: dict[str, Any] = reply.http_response.json()
    return body


def sse_events(server: LiveServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The raw events of a streamed response: each ``event:`` line must name its data's
    type."""
    with httpx.stream(
        "POST", f"{server.base_url}/v1/responses", json={**body, "stream": True}, timeout=60
    ) as reply:
        assert reply.status_code == 200, reply.read()
        assert reply.headers["content-type"].startswith("text/event-stream")
        text = reply.read().decode()
    events = []
    for block in text.strip().split("\n\n"):
        name, data = block.split("\n")
        assert name.startswith("event: ") and data.startswith("data: "), block
        event = json.loads(data[6:])
        assert event["type"] == name[7:]
        events.append(event)
    return events


def test_a_response_carries_its_output_usage_and_the_fields_it_was_asked_with(
    client: OpenAI,
) -> None:
    raw = create_raw(
        client,
        input="Say hello",
        instructions="Answer briefly.",
        max_output_tokens=32,
        temperature=0.5,
        top_p=0.9,
        metadata={"project": "herd"},
        user="tester",
        store=False,
    )
    reply = strict_response(raw)
    assert reply.id.startswith("resp_") and reply.object == "response"
    assert abs(reply.created_at - time.time()) < 60
    assert reply.status in ("completed", "incomplete")
    assert reply.model == "tiny" and reply.error is None
    (message,) = reply.output
    assert message.type == "message" and message.id.startswith("msg_")
    assert message.role == "assistant" and message.status in ("completed", "incomplete")
    (part,) = message.content
    assert part.type == "output_text" and part.annotations == [] and part.text
    assert reply.output_text == part.text
    usage = reply.usage
    assert usage is not None and usage.input_tokens > 0 and 0 < usage.output_tokens <= 32
    assert usage.total_tokens == usage.input_tokens + usage.output_tokens
    # What the worker's cache held of the prompt: up to all of it but the last token.
    assert 0 <= usage.input_tokens_details.cached_tokens < usage.input_tokens
    assert usage.output_tokens_details.reasoning_tokens == 0
    assert (reply.instructions, reply.max_output_tokens) == ("Answer briefly.", 32)
    assert (reply.temperature, reply.top_p) == (0.5, 0.9)
    assert (reply.metadata, reply.user, raw["store"]) == ({"project": "herd"}, "tester", False)
    assert (reply.tools, reply.tool_choice, reply.parallel_tool_calls) == ([], "auto", True)
    assert raw["text"] == {"format": {"type": "text"}, "verbosity": "medium"}
    assert raw["previous_response_id"] is None
    if reply.status == "completed":
        assert reply.incomplete_details is None and raw["completed_at"] >= raw["created_at"]


def test_an_answer_cut_by_max_output_tokens_is_incomplete(client: OpenAI) -> None:
    reply = strict_response(
        create_raw(client, input="Tell a long story", max_output_tokens=16, temperature=0)
    )
    assert reply.usage is not None and reply.usage.output_tokens == 16
    assert reply.status == "incomplete"
    assert reply.incomplete_details is not None
    assert reply.incomplete_details.reason == "max_output_tokens"
    (message,) = reply.output
    assert isinstance(message, ResponseOutputMessage) and message.status == "incomplete"


def test_input_items_of_every_role_and_shape_are_read(client: OpenAI) -> None:
    bare = strict_response(create_raw(client, input="Hi", max_output_tokens=16))
    reply = strict_response(
        create_raw(
            client,
            input=[
                {"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "input_text", "text": "Be kind."}]},
                {"type": "message", "role": "user", "content": "Hi"},
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello!", "annotations": []}],
                },
                {"role": "user", "content": [{"type": "input_text", "text": "Again"}]},
            ],
            max_output_tokens=16,
        )
    )
    assert bare.usage is not None and reply.usage is not None
    assert reply.usage.input_tokens > bare.usage.input_tokens + 8


def test_a_stream_sends_typed_events_in_order_with_sequence_numbers(server: LiveServer) -> None:
    events = sse_events(
        server, {"model": "tiny", "input": "Hi", "max_output_tokens": 16, "temperature": 0}
    )
    for event in events:
        strict_event(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    kinds = [e["type"] for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert deltas > 0
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    created, final = events[0]["response"], events[-1]["response"]
    assert created["status"] == "in_progress" and created["output"] == []
    assert created["id"] == final["id"]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    item_id = events[2]["item"]["id"]
    assert {e["item_id"] for e in events if "item_id" in e} == {item_id}
    assert events[-4]["text"] == text
    assert events[-2]["item"]["content"][0]["text"] == text
    assert final["status"] == "incomplete"
    assert final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["output"][0]["content"][0]["text"] == text
    assert final["usage"]["output_tokens"] == 16
    # The same request whole answers the same (greedy).
    whole = httpx.post(
        f"{server.base_url}/v1/responses",
        json={"model": "tiny", "input": "Hi", "max_output_tokens": 16, "temperature": 0},
        timeout=60,
    ).json()
    assert whole["output"][0]["content"][0]["text"] == text
    # The same answer and counts; the cached part of the prompt is the cache's, not the
    # answer's (the second request finds more of it).
    assert without_cache(whole["usage"]) == without_cache(final["usage"])


def test_a_forced_call_is_a_function_call_item_whole_and_streamed(client: OpenAI) -> None:
    reply = strict_response(
        create_raw(client, input="Weather in Paris?", tools=TOOLS, tool_choice="required")
    )
    assert reply.status == "completed"
    (call,) = reply.output
    assert call.type == "function_call"
    assert call.id is not None and call.id.startswith("fc_")
    assert call.call_id.startswith("call_") and call.name == "get_weather"
    assert call.status == "completed"
    jsonschema.validate(json.loads(call.arguments), WEATHER)
    assert reply.tools[0].type == "function" and reply.tools[0].name == "get_weather"
    assert reply.tool_choice == "required"

    with client.responses.stream(
        model="tiny",
        input="Weather in Paris?",
        tools=TOOLS,
        tool_choice={"type": "function", "name": "get_weather"},
    ) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert "response.function_call_arguments.delta" in kinds
    assert kinds[-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    pieces = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    (done,) = [e for e in events if e.type == "response.function_call_arguments.done"]
    assert done.arguments == pieces and done.name == "get_weather"
    (item,) = final.output
    assert item.type == "function_call" and item.arguments == pieces
    jsonschema.validate(json.loads(pieces), WEATHER)


def test_a_function_call_round_trip_answers_with_the_output(client: OpenAI) -> None:
    first = client.responses.create(
        model="tiny", input="Weather in Paris?", tools=TOOLS, tool_choice="required"
    )
    (call,) = first.output
    assert call.type == "function_call"
    second = client.responses.create(
        model="tiny",
        previous_response_id=first.id,
        input=[
            {"type": "function_call_output", "call_id": call.call_id, "output": "21C and sunny"}
        ],
        tools=TOOLS,
        tool_choice="none",
        max_output_tokens=16,
    )
    assert second.previous_response_id == first.id
    assert second.output[0].type == "message" and second.output_text
    # "none" leaves the tools out of the prompt: the call and its output made it longer.
    bare = client.responses.create(
        model="tiny", input="Weather in Paris?", tools=TOOLS, tool_choice="none", store=False
    )
    assert bare.usage is not None and second.usage is not None
    assert second.usage.input_tokens > bare.usage.input_tokens + len("21C and sunny") // 2
    # Without a stored response, the call and its output come in the input.
    stateless = client.responses.create(
        model="tiny",
        store=False,
        input=[
            {"role": "user", "content": "Weather in Paris?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "21C and sunny"},
        ],
        tools=TOOLS,
        tool_choice="none",
        max_output_tokens=16,
    )
    assert stateless.usage is not None
    assert stateless.usage.input_tokens == second.usage.input_tokens


def test_a_json_schema_format_gives_json_that_validates(client: OpenAI) -> None:
    reply = strict_response(
        create_raw(
            client,
            input="Which city?",
            temperature=0,
            max_output_tokens=200,
            text={
                "format": {"type": "json_schema", "name": "city", "schema": WEATHER, "strict": True}
            },
        )
    )
    assert reply.status == "completed"
    jsonschema.validate(json.loads(reply.output_text), WEATHER)
    assert reply.text is not None and reply.text.format is not None
    assert reply.text.format.type == "json_schema"


@pytest.mark.parametrize(
    ("fields", "status", "param"),
    [
        ({"input": [{"type": "image_generation_call", "id": "x"}]}, 400, "input.0.type"),
        (
            {"input": [{"type": "function_call_output", "call_id": "call_nope", "output": "1"}]},
            400,
            "input.0.call_id",
        ),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, 400, "input"),
        ({"input": []}, 400, "input"),
        ({"input": "hi", "max_output_tokens": 8}, 400, "max_output_tokens"),
        ({"input": "hi", "tools": ["get_weather"]}, 400, "tools.0"),
        (
            {"input": "hi", "tools": [{"type": "web_search"}], "tool_choice": "required"},
            400,
            "tool_choice",
        ),
        (
            {"input": "hi", "tools": TOOLS, "tool_choice": {"type": "function", "name": "nope"}},
            400,
            "tool_choice",
        ),
        ({"input": "hi", "text": {"format": {"type": "json_schema"}}}, 400, "text.format"),
        ({"input": "hi", "previous_response_id": "resp_nope"}, 404, "previous_response_id"),
        ({"input": "hi", "model": "no-such-model"}, 404, None),
    ],
)
def test_a_bad_request_is_answered_in_openais_error_shape(
    web: InProcessServer, fields: dict[str, Any], status: int, param: str | None
) -> None:
    reply = web.post(f"{web.base_url}/v1/responses", json={"model": "tiny", **fields}, timeout=30)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    if param is not None:
        assert (error["param"] or "").startswith(param), error


def test_missing_model_or_input_is_a_400_through_the_client(web_client: OpenAI) -> None:
    for fields in ({"input": "hi"}, {"model": "tiny"}):
        with pytest.raises(openai.BadRequestError) as caught:
            web_client.post("/responses", body=fields, cast_to=Response)
        body: Any = caught.value.body
        assert body["param"] == ("model" if "input" in fields else "input")


def without_cache(usage: dict[str, Any]) -> dict[str, Any]:
    """A usage object without what the KV cache happened to hold."""
    return {k: v for k, v in usage.items() if k != "input_tokens_details"}
