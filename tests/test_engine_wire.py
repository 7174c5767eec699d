"""The worker's one job between the wire and the engine (``workers.worker.inference``): a
payload becomes an ``EngineRequest``, and each engine event the wire event web reads."""

from __future__ import annotations

import base64
import json

from workers.broker.wire import COUNT_TOKENS, Delta, Done, Error, GenerationPayload, ToolDelta
from workers.engine import events
from workers.engine.requests import BATCH, INTERACTIVE, Cancellation, SamplingOptions
from workers.worker.inference import generation_request, wire_event


def test_a_chat_payload_becomes_an_engine_request() -> None:
    payload = GenerationPayload(
        messages=[{"role": "user", "content": "hi"}],
        options={"temperature": 0.0, "max_tokens": 5, "stop": ["x"], "unknown": 1},
        tools=[{"type": "function", "function": {"name": "f"}}],
        tool_choice="required",
        truncate=True,
        separate_reasoning=True,
        template_variables={"enable_thinking": False},
    )
    cancel = Cancellation()
    request = generation_request(payload, cancel)
    assert request.messages == ({"role": "user", "content": "hi"},)
    assert request.sampling == SamplingOptions(temperature=0.0, max_tokens=5, stop=("x",))
    assert request.tools == ({"type": "function", "function": {"name": "f"}},)
    assert (request.tool_choice, request.truncate, request.separate_reasoning) == (
        "required",
        True,
        True,
    )
    assert request.template_variables == {"enable_thinking": False}
    assert request.priority == INTERACTIVE and request.cancel is cancel
    assert not request.count_tokens_only


def test_a_chats_images_cross_the_wire_as_base64_and_reach_the_engine_as_bytes() -> None:
    parts = [{"type": "image"}, {"type": "text", "text": "what is this"}]
    payload = GenerationPayload(
        messages=[{"role": "user", "content": parts}],
        images=[base64.b64encode(b"\x89PNG first").decode(), base64.b64encode(b"GIF89a").decode()],
    )
    sent = GenerationPayload.from_json(json.loads(json.dumps(payload.to_json())))
    request = generation_request(sent, Cancellation())
    assert request.images == (b"\x89PNG first", b"GIF89a")
    assert request.messages == ({"role": "user", "content": parts},)
    assert generation_request(GenerationPayload(prompt="hi"), Cancellation()).images == ()


def test_a_batch_line_counting_tokens_queues_in_the_batch_lane() -> None:
    payload = GenerationPayload(prompt_tokens=[1, 2], action=COUNT_TOKENS, lane="batch")
    request = generation_request(payload, Cancellation())
    assert request.prompt_tokens == (1, 2) and request.count_tokens_only
    assert request.priority == BATCH


def test_engine_pieces_become_deltas() -> None:
    assert wire_event(events.TextPiece("a", 1, None), 0, 0) == Delta("a", 1, None)
    assert wire_event(events.ThinkingPiece("t", 2, None), 0, 0) == Delta("", 2, None, "t")
    assert wire_event(events.ToolCallPiece(0, "", "id", "f"), 0, 0) == ToolDelta(0, "", "id", "f")


def test_the_final_event_becomes_done_with_the_load_time() -> None:
    call = events.ToolCall("call_1", "f", {"x": 1})
    finished = events.Finished(
        "tool_calls", events.Usage(3, 4, 2), prompt_eval_ns=5, eval_ns=6, tool_calls=(call,)
    )
    done = wire_event(finished, 7, 0)
    assert isinstance(done, Done)
    assert (done.finish_reason, done.usage.prompt_tokens, done.usage.cached_tokens) == (
        "tool_calls",
        3,
        2,
    )
    assert (done.timings.load_ns, done.timings.prompt_eval_ns, done.timings.eval_ns) == (7, 5, 6)
    assert done.tool_calls is not None and done.tool_calls[0].arguments == {"x": 1}
    plain = wire_event(events.Finished("stop"), 0, 0)
    assert isinstance(plain, Done) and plain.tool_calls is None
    counted = wire_event(events.Finished(events.COUNTED, events.Usage(9)), 0, 0)
    assert isinstance(counted, Done) and counted.finish_reason == COUNT_TOKENS


def test_a_rejection_becomes_a_400_naming_the_field() -> None:
    error = wire_event(events.Rejected("too long", "context_length_exceeded", "messages"), 0, 0)
    assert isinstance(error, Error)
    assert (error.status, error.error_type, error.code, error.param) == (
        400,
        "invalid_request_error",
        "context_length_exceeded",
        "messages",
    )
