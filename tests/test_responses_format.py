"""The Responses format and request translation without a server: worker events in, events
and objects out that the openai client's types accept, for the sequences a live model rarely
gives (a worker failing mid-answer, text followed by a parsed call); input items in, chat
messages out."""

from __future__ import annotations

import json
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from inference_app.replies import Answer
from inference_app.responses_api.format import ResponseObjectFormat
from inference_app.responses_api.serializer import ResponseSerializer
from inference_app.responses_api.storage import ado_store_response, afind_response
from project.errors import ApiError, ValidationFailed
from tests.test_responses_api import strict_event, strict_response
from workers.broker.wire import Delta, Done, ToolCall, ToolDelta, Usage

ECHO = ResponseSerializer(data={"model": "m", "input": "hi"})
assert ECHO.is_valid(), ECHO.errors


def new_format() -> ResponseObjectFormat:
    return ResponseObjectFormat("resp_test", "m", ECHO.echo(ECHO.to_payload({})))


def events(chunks: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(chunks).decode()
    parsed = [json.loads(block.split("\ndata: ")[1]) for block in text.strip().split("\n\n")]
    for event in parsed:
        strict_event(event)
    assert [e["sequence_number"] for e in parsed] == list(range(len(parsed)))
    return parsed


def test_a_worker_failing_mid_answer_ends_the_stream_with_response_failed() -> None:
    fmt = new_format()
    out = events(
        [
            fmt.stream_delta(Delta("Hel", 1), True),
            fmt.stream_error(ApiError("worker w1 stopped", status=503, code="worker_lost")),
        ]
    )
    assert [e["type"] for e in out][-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.failed",
    ]
    failed = out[-1]["response"]
    assert failed["status"] == "failed"
    assert failed["error"] == {"code": "server_error", "message": "worker w1 stopped"}
    assert failed["output"][0]["status"] == "incomplete"
    assert failed["output"][0]["content"][0]["text"] == "Hel"
    assert fmt.result == failed


def test_a_stream_that_fails_before_any_event_still_opens_and_fails() -> None:
    out = events([new_format().stream_error(ApiError("no worker", status=503))])
    assert [e["type"] for e in out] == [
        "response.created",
        "response.in_progress",
        "response.failed",
    ]


def test_streamed_call_pieces_and_a_call_parsed_at_the_end_are_items_of_their_own() -> None:
    fmt = new_format()
    parsed = ToolCall("call_b", "g", {"x": 1})
    out = events(
        [
            fmt.stream_delta(Delta("Sure.", 2), True),
            fmt.stream_tool_delta(ToolDelta(0, "", "call_a", "f"), False),
            fmt.stream_tool_delta(ToolDelta(0, '{"a":'), False),
            fmt.stream_tool_delta(ToolDelta(0, "1}"), False),
            fmt.stream_done(
                Done(
                    "tool_calls",
                    Usage(5, 7),
                    tool_calls=[ToolCall("call_a", "f", {"a": 1}), parsed],
                ),
                False,
            ),
        ]
    )
    added = [e["item"] for e in out if e["type"] == "response.output_item.added"]
    assert [(i["type"], i.get("call_id")) for i in added] == [
        ("message", None),
        ("function_call", "call_a"),
        ("function_call", "call_b"),
    ]
    done = [e for e in out if e["type"] == "response.function_call_arguments.done"]
    assert [(d["name"], d["arguments"]) for d in done] == [("f", '{"a":1}'), ("g", '{"x": 1}')]
    final = strict_response(out[-1]["response"])
    assert out[-1]["type"] == "response.completed"
    assert [item.type for item in final.output] == ["message", "function_call", "function_call"]
    assert [e["output_index"] for e in out if e["type"] == "response.output_item.done"] == [0, 1, 2]
    assert final.usage is not None and final.usage.total_tokens == 12


def test_a_whole_answer_with_text_and_a_call_has_both_items() -> None:
    body = new_format().whole(
        Answer("Let me check.", Done("tool_calls", tool_calls=[ToolCall("c", "f", {})]))
    )
    reply = strict_response(body)
    assert [item.type for item in reply.output] == ["message", "function_call"]
    assert reply.output_text == "Let me check."


def conversation(body: dict[str, Any], previous: list[dict[str, Any]] | None = None) -> Any:
    serializer = ResponseSerializer(
        data={"model": "m", **body}, context={"previous_messages": previous or []}
    )
    if not serializer.is_valid():
        raise ValidationFailed(serializer.errors)
    return serializer


def test_input_items_become_chat_messages() -> None:
    serializer = conversation(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": "weather?"},
                {"type": "reasoning", "summary": []},
                {"type": "message", "role": "assistant", "content": "Checking."},
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "g", "arguments": ""},
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
                {
                    "type": "function_call_output",
                    "call_id": "c2",
                    "output": [{"type": "input_text", "text": "21C"}],
                },
            ],
        }
    )
    messages = serializer.chat.validated_data["messages"]
    assert [(m["role"], m.get("content")) for m in messages] == [
        ("system", "Be brief."),
        ("user", "weather?"),
        ("assistant", "Checking."),
        ("tool", "sunny"),
        ("tool", "21C"),
    ]
    calls = messages[2]["tool_calls"]
    assert [(c["id"], c["function"]["arguments"]) for c in calls] == [("c1", "{}"), ("c2", "{}")]
    # The stored conversation leaves the instructions out.
    assert serializer.validated_data["conversation"][0]["role"] == "user"
    items = serializer.validated_data["input"]
    assert [i["id"][:3] for i in items] == ["msg", "rs_", "msg", "fc_", "fc_", "fco", "fco"]


def test_an_output_may_answer_a_call_of_the_previous_response() -> None:
    previous: list[dict[str, Any]] = [
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "f"}}],
        },
    ]
    serializer = conversation(
        {
            "previous_response_id": "resp_x",
            "input": [{"type": "function_call_output", "call_id": "c9", "output": "ok"}],
        },
        previous,
    )
    assert [m["role"] for m in serializer.validated_data["conversation"]] == [
        "user",
        "assistant",
        "tool",
    ]


def test_reasoning_is_a_reasoning_item_before_the_message() -> None:
    done = Done("stop", Usage(5, 7))
    body = new_format().whole(Answer("Yes.", done, thinking="Let me see.", reasoning_tokens=4))
    reply = strict_response(body)
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    reasoning = reply.output[0]
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert [(c.type, c.text) for c in reasoning.content] == [("reasoning_text", "Let me see.")]
    assert reply.output_text == "Yes."
    assert reply.usage is not None and reply.usage.output_tokens_details.reasoning_tokens == 4


def test_streamed_reasoning_comes_as_reasoning_text_events_then_the_message() -> None:
    fmt = new_format()
    out = events(
        [
            fmt.stream_delta(Delta("", 2, thinking="Let me"), True),
            fmt.stream_delta(Delta("", 1, thinking=" see."), False),
            fmt.stream_delta(Delta("Yes.", 1), False),
            fmt.stream_done(Done("stop", Usage(5, 4)), False),
        ]
    )
    kinds = [e["type"] for e in out]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    deltas = [e["delta"] for e in out if e["type"] == "response.reasoning_text.delta"]
    assert deltas == ["Let me", " see."]
    (done,) = [e for e in out if e["type"] == "response.reasoning_text.done"]
    assert done["text"] == "Let me see." and done["output_index"] == 0
    assert kinds.index("response.reasoning_text.done") < kinds.index("response.output_text.delta")
    final = strict_response(out[-1]["response"])
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens == 3


def test_an_answer_cut_while_reasoning_still_ends_with_a_message() -> None:
    fmt = new_format()
    out = events(
        [
            fmt.stream_delta(Delta("", 2, thinking="Let me"), True),
            fmt.stream_done(Done("length", Usage(5, 2)), False),
        ]
    )
    final = strict_response(out[-1]["response"])
    assert out[-1]["type"] == "response.incomplete"
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == ""


@pytest.mark.django_db(transaction=True)
def test_a_stored_response_answers_exactly_as_it_was_answered() -> None:
    """A NUL character too, which PostgreSQL's jsonb could not hold."""
    body = new_format().whole(Answer("a\x00b \ud7ff", Done("stop", Usage(1, 2))))
    conversation = [{"role": "user", "content": "hi\x00"}]
    async_to_sync(ado_store_response)(body, [], conversation, None)
    stored = async_to_sync(afind_response)(body["id"], None)
    assert stored.to_openai() == body
    assert stored.messages[0] == conversation[0]
    assert stored.messages[-1]["content"] == "a\x00b \ud7ff"
