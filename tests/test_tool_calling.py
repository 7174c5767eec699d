"""Tool calling on ``/v1/chat/completions`` through the official openai client."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest
from openai import OpenAI

WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "enum": ["Paris", "Oslo", "Lima"]},
        "celsius": {"type": "boolean"},
    },
    "required": ["city", "celsius"],
    "additionalProperties": False,
}
TIME_PARAMS = {
    "type": "object",
    "properties": {"zone": {"type": "string", "enum": ["UTC", "CET"]}},
    "required": ["zone"],
    "additionalProperties": False,
}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": WEATHER_PARAMS,
        },
    },
    {
        "type": "function",
        "function": {"name": "get_time", "description": "The time", "parameters": TIME_PARAMS},
    },
]
ASK: list[Any] = [{"role": "user", "content": "weather in Paris?"}]
SCHEMAS = {"get_weather": WEATHER_PARAMS, "get_time": TIME_PARAMS}


def ask(client: OpenAI, **kwargs: Any) -> Any:
    for name, value in (
        ("messages", ASK),
        ("tools", TOOLS),
        ("max_tokens", 200),
        ("temperature", 0.7),
        ("seed", 4),
    ):
        kwargs.setdefault(name, value)
    return client.chat.completions.create(model="tiny", **kwargs)


def test_required_gives_a_valid_call_of_an_offered_tool(client: OpenAI) -> None:
    reply = ask(client, tool_choice="required")
    choice = reply.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.id.startswith("call_")
    assert call.function.name in SCHEMAS
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


@pytest.mark.parametrize("name", ["get_weather", "get_time"])
def test_a_named_tool_choice_calls_that_function(client: OpenAI, name: str) -> None:
    reply = ask(client, tool_choice={"type": "function", "function": {"name": name}})
    (call,) = reply.choices[0].message.tool_calls or []
    assert call.function.name == name
    jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[name])
    assert reply.choices[0].finish_reason == "tool_calls"


def test_a_streamed_call_arrives_in_a_tool_calls_delta(client: OpenAI) -> None:
    whole = ask(client, tool_choice="required")
    chunks = list(ask(client, tool_choice="required", stream=True))
    deltas = [c.choices[0].delta for c in chunks if c.choices]
    assert "".join(d.content or "" for d in deltas) == ""
    call, *fragments = [call for d in deltas for call in d.tool_calls or []]
    assert {c.index for c in [call, *fragments]} == {0}
    assert call.type == "function"
    assert call.function is not None
    (expected,) = whole.choices[0].message.tool_calls
    assert call.function.name == expected.function.name
    # The arguments follow the delta that names the call, in fragments.
    arguments = "".join(f.function.arguments or "" for f in fragments if f.function)
    assert json.loads(arguments) == json.loads(expected.function.arguments)
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "tool_calls"


def test_none_never_calls_and_answers_in_text(client: OpenAI) -> None:
    reply = ask(client, tool_choice="none", max_tokens=20)
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content
    assert reply.choices[0].finish_reason in ("stop", "length")
    # "none" leaves the tools out of the prompt altogether.
    bare = client.chat.completions.create(model="tiny", messages=ASK, max_tokens=1)
    assert reply.usage.prompt_tokens == bare.usage.prompt_tokens  # type: ignore[union-attr]


def test_auto_offers_the_tools_in_the_prompt_and_answers_text(client: OpenAI) -> None:
    reply = ask(client, tool_choice="auto", max_tokens=20, temperature=0)
    bare = client.chat.completions.create(model="tiny", messages=ASK, max_tokens=1)
    assert reply.usage.prompt_tokens > bare.usage.prompt_tokens + 50  # type: ignore[union-attr]
    # The random model does not produce a call: its text comes back as text.
    assert reply.choices[0].message.tool_calls is None
    assert reply.choices[0].message.content


def test_a_tool_result_is_fed_back_as_a_tool_message(client: OpenAI) -> None:
    first = ask(client, tool_choice="required")
    (call,) = first.choices[0].message.tool_calls
    turns: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": call.function.name, "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "21 degrees and sunny"},
    ]
    follow_up = ask(client, messages=turns, tool_choice="none", max_tokens=10)
    assert follow_up.choices[0].message.content
    bare = client.chat.completions.create(model="tiny", messages=ASK, max_tokens=1)
    grown = follow_up.usage.prompt_tokens - bare.usage.prompt_tokens  # type: ignore[union-attr]
    assert grown > len("21 degrees and sunny") // 2


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tool_choice": "always"}, "tool_choice"),
        ({"tools": [{"type": "function", "function": {"name": "has space"}}]}, "tools"),
        ({"tools": [{"type": "retrieval"}]}, "tools"),
    ],
)
def test_a_bad_tool_request_is_a_400_naming_the_param(
    web_client: OpenAI, kwargs: dict[str, Any], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        ask(web_client, **kwargs)
    body: Any = caught.value.body
    assert body["param"].startswith(param)


def test_tool_choice_without_tools_is_a_400(web_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        web_client.chat.completions.create(
            model="tiny", messages=ASK, tool_choice="required", max_tokens=5
        )
    assert "tool_choice" in str(caught.value)
