"""``/v1/messages`` and ``/v1/messages/count_tokens`` through the official anthropic client:
every request field, whole and streamed answers, stop reasons, a tool-call round trip,
counting tokens, and a client that leaves a stream."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import jsonschema
import pytest

from tests.live import LiveServer
from tests.test_streaming_relay import assert_cancelled_at_once
from tests.test_tool_calling import TIME_PARAMS, WEATHER_PARAMS

HELLO: list[Any] = [{"role": "user", "content": "hello there"}]
WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": WEATHER_PARAMS,
}
CLOCK: Any = {"name": "get_time", "input_schema": TIME_PARAMS}
SCHEMAS = {t["name"]: t["input_schema"] for t in (WEATHER, CLOCK)}


@pytest.fixture
def claude(server: LiveServer) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=server.base_url, api_key="unused", max_retries=0, timeout=60
    )


def sampling(temperature: float = 0, **more: Any) -> dict[str, Any]:
    """Sampling fields for the client's ``extra_body``: its newest versions leave
    ``temperature``, ``top_p`` and ``top_k`` out of ``create()``'s arguments, and Herd still
    takes them, as the API did and older clients (and Claude Code) send them."""
    return {"extra_body": {"temperature": temperature, **more}}


def greedy(claude: anthropic.Anthropic, **kwargs: Any) -> anthropic.types.Message:
    kwargs.setdefault("messages", HELLO)
    kwargs.setdefault("max_tokens", 12)
    temperature = kwargs.pop("temperature", 0)
    more = {k: kwargs.pop(k) for k in ("top_p", "top_k") if k in kwargs}
    return claude.messages.create(model="tiny", **kwargs, **sampling(temperature, **more))


def text_of(message: anthropic.types.Message) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


def test_it_answers_in_anthropics_message_shape(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(
        model="tiny",
        max_tokens=8,
        system="You are terse.",
        messages=HELLO,
        metadata={"user_id": "user-1"},
        **sampling(0.7, top_p=0.9, top_k=20),
    )
    assert reply.type == "message"
    assert reply.id.startswith("msg_")
    assert reply.role == "assistant"
    assert reply.model == "tiny"
    assert [b.type for b in reply.content] in (["text"], [])
    assert reply.stop_reason in ("end_turn", "max_tokens")
    assert reply.stop_sequence is None
    assert reply.usage.input_tokens > 0
    assert 0 < reply.usage.output_tokens <= 8


def test_sampling_fields_reach_the_sampler(claude: anthropic.Anthropic) -> None:
    assert text_of(greedy(claude)) == text_of(greedy(claude))
    # A high temperature over the whole vocabulary samples other text than greedy does.
    sampled = {
        text_of(greedy(claude, temperature=1.0, top_k=0, top_p=1.0, max_tokens=24))
        for _ in range(3)
    }
    assert sampled != {text_of(greedy(claude, max_tokens=24))}
    # top_k 1 is greedy at any temperature.
    assert text_of(greedy(claude, temperature=1.0, top_k=1)) == text_of(greedy(claude))


def test_max_tokens_ends_with_max_tokens(claude: anthropic.Anthropic) -> None:
    reply = claude.messages.create(model="slow", max_tokens=3, messages=HELLO, **sampling())
    assert reply.stop_reason == "max_tokens"
    assert reply.usage.output_tokens == 3


def test_a_stop_sequence_ends_the_answer_and_is_named(claude: anthropic.Anthropic) -> None:
    free = text_of(
        claude.messages.create(model="slow", max_tokens=30, messages=HELLO, **sampling())
    )
    stop = free[10:13]
    assert len(stop) == 3
    reply = claude.messages.create(
        model="slow",
        max_tokens=30,
        messages=HELLO,
        **sampling(),
        stop_sequences=["\u2603never", stop],
    )
    assert reply.stop_reason == "stop_sequence"
    assert reply.stop_sequence == stop
    assert text_of(reply) == free[: free.index(stop)]

    with claude.messages.stream(
        model="slow", max_tokens=30, messages=HELLO, stop_sequences=[stop], **sampling()
    ) as stream:
        streamed = stream.get_final_message()
    assert (streamed.stop_reason, streamed.stop_sequence) == ("stop_sequence", stop)
    assert text_of(streamed) == text_of(reply)


def test_a_system_prompt_as_text_blocks_is_their_text(claude: anthropic.Anthropic) -> None:
    def count(system: Any) -> int:
        return claude.messages.count_tokens(
            model="tiny", system=system, messages=HELLO
        ).input_tokens

    blocks = [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French.", "cache_control": {"type": "ephemeral"}},
    ]
    assert count(blocks) == count("You are terse.\n\nAnswer in French.")
    assert (
        count(blocks)
        > count("You are terse.")
        > claude.messages.count_tokens(model="tiny", messages=HELLO).input_tokens
    )


def test_the_stream_helper_gives_the_same_message(claude: anthropic.Anthropic) -> None:
    whole = greedy(claude)
    with claude.messages.stream(
        model="tiny", max_tokens=12, messages=HELLO, **sampling()
    ) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert "".join(pieces) == text_of(whole)
    assert [b.to_dict() for b in final.content] == [b.to_dict() for b in whole.content]
    assert final.stop_reason == whole.stop_reason
    assert final.usage.input_tokens == whole.usage.input_tokens
    assert final.usage.output_tokens == whole.usage.output_tokens
    assert final.id.startswith("msg_")


def test_a_raw_stream_sends_anthropics_events_in_order(claude: anthropic.Anthropic) -> None:
    events = list(
        claude.messages.create(
            model="tiny", max_tokens=12, messages=HELLO, stream=True, **sampling()
        )
    )
    types = [e.type for e in events]
    assert types[0] == "message_start"  # the client passes over the pings
    assert types[-2:] == ["message_delta", "message_stop"]
    start = events[0]
    assert start.type == "message_start"
    assert start.message.content == [] and start.message.stop_reason is None
    assert types.count("content_block_start") == types.count("content_block_stop") == 1
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert deltas and all(e.index == 0 and e.delta.type == "text_delta" for e in deltas)
    end = events[-2]
    assert end.type == "message_delta"
    assert end.delta.stop_reason in ("end_turn", "max_tokens")
    assert 0 < end.usage.output_tokens <= 12
    assert end.usage.input_tokens == greedy(claude).usage.input_tokens


def test_a_stream_is_server_sent_events_named_by_type(server: LiveServer) -> None:
    body = {"model": "tiny", "max_tokens": 4, "messages": HELLO, "stream": True}
    reply = httpx.post(f"{server.base_url}/v1/messages", json=body, timeout=30)
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = [e for e in reply.text.split("\n\n") if e]
    names = [e.split("\n")[0] for e in events]
    assert names[:2] == ["event: message_start", "event: ping"]
    assert names[-1] == "event: message_stop"
    for event in events:
        name, data = event.split("\n")
        assert json.loads(data.removeprefix("data: "))["type"] == name.removeprefix("event: ")


@pytest.mark.parametrize(
    "choice", [{"type": "any"}, {"type": "tool", "name": "get_time"}], ids=["any", "tool"]
)
def test_a_forced_tool_choice_gives_a_valid_tool_use(
    claude: anthropic.Anthropic, choice: dict[str, Any]
) -> None:
    reply = greedy(claude, tools=[WEATHER, CLOCK], tool_choice=choice, max_tokens=200)
    assert reply.stop_reason == "tool_use"
    (call,) = reply.content
    assert call.type == "tool_use"
    assert call.id.startswith("toolu_")
    assert call.name == choice.get("name", call.name)
    assert call.name in SCHEMAS
    assert isinstance(call.input, dict)
    jsonschema.validate(call.input, SCHEMAS[call.name])


def test_a_streamed_tool_use_arrives_as_input_json_deltas(claude: anthropic.Anthropic) -> None:
    asked: dict[str, Any] = {
        "model": "tiny",
        "messages": HELLO,
        "max_tokens": 200,
        "tools": [WEATHER],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        **sampling(),
    }
    whole = claude.messages.create(**asked)
    events = list(claude.messages.create(**asked, stream=True))
    types = [e.type for e in events]
    (start,) = [e for e in events if e.type == "content_block_start"]
    assert start.content_block.type == "tool_use"
    assert start.content_block.name == "get_weather"
    assert start.content_block.id.startswith("toolu_")
    # Named as soon as the name is written, its input after; how many fragments the input
    # comes in depends on how fast it is generated (the worker sends what it has each time).
    assert types.index("content_block_start") < types.index("content_block_delta")
    fragments = [e.delta.partial_json for e in events if e.type == "content_block_delta"]
    (call,) = whole.content
    assert call.type == "tool_use"
    assert json.loads("".join(fragments)) == call.input
    assert [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["tool_use"]

    with claude.messages.stream(**asked) as stream:
        final = stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == call.input


def test_a_tool_use_cut_short_by_max_tokens_keeps_what_was_written(
    claude: anthropic.Anthropic,
) -> None:
    reply = greedy(claude, tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=8)
    assert reply.stop_reason == "max_tokens"
    (call,) = reply.content
    assert call.type == "tool_use" and call.name == "get_weather"
    assert isinstance(call.input, dict)


def test_a_tool_round_trip_answers_the_result(claude: anthropic.Anthropic) -> None:
    ask: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
    first = greedy(
        claude, messages=ask, tools=[WEATHER], tool_choice={"type": "any"}, max_tokens=200
    )
    (call,) = first.content
    assert call.type == "tool_use"
    turns: list[Any] = [
        *ask,
        {"role": "assistant", "content": [c.model_dump() for c in first.content]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": [{"type": "text", "text": "sunny, 21 degrees"}],
                }
            ],
        },
    ]
    answer = greedy(claude, messages=turns, tools=[WEATHER], max_tokens=10)
    assert answer.stop_reason in ("end_turn", "max_tokens")
    assert [b.type for b in answer.content] == ["text"]
    # The call and its result are in the prompt: a failed call reads otherwise.
    with_result = claude.messages.count_tokens(model="tiny", messages=turns, tools=[WEATHER])
    assert with_result.input_tokens == answer.usage.input_tokens
    turns[-1]["content"][0]["is_error"] = True
    failed = claude.messages.count_tokens(model="tiny", messages=turns, tools=[WEATHER])
    assert failed.input_tokens > with_result.input_tokens
    without = claude.messages.count_tokens(model="tiny", messages=ask, tools=[WEATHER])
    assert with_result.input_tokens > without.input_tokens


def test_tool_choice_none_leaves_the_tools_out(claude: anthropic.Anthropic) -> None:
    def count(**kwargs: Any) -> int:
        return claude.messages.count_tokens(model="tiny", messages=HELLO, **kwargs).input_tokens

    offered = count(tools=[WEATHER, CLOCK])
    assert offered > count() + 20
    assert count(tools=[WEATHER, CLOCK], tool_choice={"type": "none"}) == count()
    assert count(tools=[WEATHER, CLOCK], tool_choice={"type": "auto"}) == offered


def test_count_tokens_counts_what_messages_reads(claude: anthropic.Anthropic) -> None:
    counted = claude.messages.count_tokens(model="tiny", system="Be brief.", messages=HELLO)
    read = greedy(claude, system="Be brief.", max_tokens=1)
    assert counted.input_tokens == read.usage.input_tokens > 0
    # A prompt over the context is still counted: nothing generates.
    long: list[Any] = [{"role": "user", "content": "word " * 6000}]
    assert claude.messages.count_tokens(model="tiny", messages=long).input_tokens > 4096


def test_consecutive_messages_of_one_role_are_one_turn(claude: anthropic.Anthropic) -> None:
    def count(messages: list[Any]) -> int:
        return claude.messages.count_tokens(model="tiny", messages=messages).input_tokens

    split = [
        {"role": "user", "content": "hello"},
        {"role": "user", "content": [{"type": "text", "text": "there"}]},
    ]
    joined = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
        }
    ]
    assert count(split) == count(joined)
    assert count(split) < count([split[0], {"role": "assistant", "content": "ok"}, split[1]])
    assert greedy(claude, messages=split, max_tokens=2).usage.input_tokens == count(split)


def test_an_earlier_turns_thinking_is_left_out(claude: anthropic.Anthropic) -> None:
    def count(assistant: list[Any]) -> int:
        turns = [*HELLO, {"role": "assistant", "content": assistant}, *HELLO]
        return claude.messages.count_tokens(model="tiny", messages=turns).input_tokens

    said = {"type": "text", "text": "hi"}
    thought = {"type": "thinking", "thinking": "they greet me", "signature": "x"}
    assert count([thought, said]) == count([said])


def test_a_client_that_leaves_a_stream_cancels_its_generation(
    server: LiveServer, claude: anthropic.Anthropic
) -> None:
    go: Any = [{"role": "user", "content": "go"}]
    with claude.messages.stream(model="slow", max_tokens=3000, messages=go, **sampling()) as stream:
        request_id = stream.response.headers["x-request-id"]
        texts = 0
        for event in stream:
            texts += event.type == "text"
            if texts == 4:
                break
    assert texts == 4
    assert_cancelled_at_once(server, request_id)
