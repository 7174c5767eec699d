"""A forced tool call streams as OpenAI streams one (a first delta naming it, then its
arguments in fragments), and a call cut short by ``max_tokens`` comes back as a call, through
the openai client's stream helpers and the ollama client."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import ollama
import openai
import pytest
from openai import OpenAI

from tests.test_ollama_tools import ASK as OLLAMA_ASK
from tests.test_ollama_tools import CALL_SCHEMA, WEATHER, forced_call
from tests.test_tool_calling import ASK, SCHEMAS, TOOLS

WEATHER_CHOICE: Any = {"type": "function", "function": {"name": "get_weather"}}


def stream_events(client: OpenAI, **kwargs: Any) -> tuple[list[Any], Any]:
    with client.chat.completions.stream(
        model="tiny", messages=ASK, tools=TOOLS, temperature=0.7, seed=4, **kwargs
    ) as stream:
        events = list(stream)
        return events, stream.get_final_completion()


def test_the_stream_helper_sees_the_arguments_arrive_in_fragments(client: OpenAI) -> None:
    events, final = stream_events(client, tool_choice="required", max_tokens=200)
    fragments = [e for e in events if e.type == "tool_calls.function.arguments.delta"]
    # How many fragments the arguments come in depends on how fast they are generated (the
    # worker sends what it has each time); that the name comes first is the next test's.
    assert fragments
    assert {e.name for e in fragments} == {fragments[0].name}
    assert fragments[0].name in SCHEMAS
    (done,) = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert done.arguments == "".join(e.arguments_delta for e in fragments)
    jsonschema.validate(json.loads(done.arguments), SCHEMAS[done.name])
    assert not [e for e in events if e.type == "content.delta"]
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls or []
    assert call.function.name == done.name and call.function.arguments == done.arguments


def test_the_first_delta_names_the_call_and_the_rest_carry_arguments(client: OpenAI) -> None:
    chunks = list(
        client.chat.completions.create(
            model="tiny",
            messages=ASK,
            tools=TOOLS,
            tool_choice=WEATHER_CHOICE,
            max_tokens=200,
            seed=4,
            stream=True,
        )
    )
    calls = [call for c in chunks if c.choices for call in c.choices[0].delta.tool_calls or []]
    first, *rest = calls
    assert first.id and first.id.startswith("call_")
    assert first.type == "function"
    assert first.function is not None and first.function.name == "get_weather"
    assert first.function.arguments == ""
    assert rest and all(c.id is None and c.function and c.function.name is None for c in rest)
    assert all(c.index == 0 for c in calls)
    arguments = json.loads("".join(c.function.arguments or "" for c in rest if c.function))
    jsonschema.validate(arguments, SCHEMAS["get_weather"])
    assert list(arguments) == ["city", "celsius"]  # the schema's order
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def weather_call(client: OpenAI, max_tokens: int) -> Any:
    return client.chat.completions.create(
        model="tiny",
        messages=ASK,
        tools=TOOLS,
        tool_choice=WEATHER_CHOICE,
        max_tokens=max_tokens,
        temperature=0.7,
        seed=4,
    )


def test_a_call_cut_by_max_tokens_is_a_partial_call_not_content(client: OpenAI) -> None:
    events, _ = stream_events(client, tool_choice=WEATHER_CHOICE, max_tokens=200)
    (whole,) = [e.arguments for e in events if e.type == "tool_calls.function.arguments.done"]
    length = weather_call(client, 200).usage.completion_tokens
    for max_tokens in (3, length // 2, length - 3):
        choice = weather_call(client, max_tokens).choices[0]
        assert choice.finish_reason == "length"
        assert choice.message.content is None
        (call,) = choice.message.tool_calls or []
        assert call.function.name == "get_weather"
        # The arguments as far as they were written, never the wrapper around them.
        assert whole.startswith(call.function.arguments)
        if max_tokens == length - 3:
            assert len(whole) - 12 < len(call.function.arguments) < len(whole)


def test_a_streamed_call_cut_by_max_tokens_ends_with_length(client: OpenAI) -> None:
    length = weather_call(client, 200).usage.completion_tokens
    with client.chat.completions.stream(
        model="tiny",
        messages=ASK,
        tools=TOOLS,
        tool_choice=WEATHER_CHOICE,
        max_tokens=length - 3,
        temperature=0.7,
        seed=4,
    ) as stream:
        events = list(stream)
        # What the helper says of any answer cut short, as against OpenAI.
        with pytest.raises(openai.LengthFinishReasonError) as caught:
            stream.get_final_completion()
    assert not [e for e in events if e.type == "content.delta"]
    assert [e for e in events if e.type == "tool_calls.function.arguments.delta"]
    choice = caught.value.completion.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function" and call.function.name == "get_weather"
    assert call.function.arguments.startswith("{")
    assert '"arguments"' not in call.function.arguments


def test_an_ollama_call_cut_by_num_predict_is_a_call_with_what_was_written(
    ollama_client: ollama.Client,
) -> None:
    whole = forced_call(ollama_client)
    (expected,) = whole.message.tool_calls or []
    reply = ollama_client.chat(
        model="tiny",
        messages=OLLAMA_ASK,
        tools=[WEATHER],
        format=CALL_SCHEMA,
        options={"temperature": 0.5, "seed": 2, "num_predict": 30},
    )
    assert reply.done_reason == "length"
    assert reply.message.content == ""
    (call,) = reply.message.tool_calls or []
    assert call.function.name == "get_weather"
    # The arguments as far as they went: each value, or the start of a string cut short.
    for key, value in call.function.arguments.items():
        written = expected.function.arguments[key]
        assert written.startswith(value) if isinstance(value, str) else written == value
