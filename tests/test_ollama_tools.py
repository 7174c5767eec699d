"""Tools on ``/api/chat``: offered to the model, calls read back into ``message.tool_calls``,
results fed back as ``tool`` messages."""

from __future__ import annotations

import json
from typing import Any

import httpx
import ollama

from tests.live import LiveServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "enum": ["Paris", "Oslo"]},
                "celsius": {"type": "boolean"},
            },
            "required": ["city", "celsius"],
            "additionalProperties": False,
        },
    },
}
ASK = [{"role": "user", "content": "weather in Paris?"}]

# A schema only a call of get_weather satisfies: the tiny random model then answers with a
# call every time, and the server must recognise it as one.
CALL_SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"const": "get_weather"},
        "arguments": WEATHER["function"]["parameters"],  # type: ignore[index]
    },
    "required": ["name", "arguments"],
    "additionalProperties": False,
}


def forced_call(client: ollama.Client, **kwargs: Any) -> Any:
    return client.chat(
        model="tiny",
        messages=ASK,
        tools=[WEATHER],
        format=CALL_SCHEMA,
        options={"temperature": 0.5, "seed": 2, "num_predict": 200},
        **kwargs,
    )


def test_a_call_in_the_answer_comes_back_in_tool_calls(ollama_client: ollama.Client) -> None:
    reply = forced_call(ollama_client)
    assert reply.done_reason == "stop"
    assert reply.message.content == ""
    (call,) = reply.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert call.function.arguments["city"] in ("Paris", "Oslo")
    assert isinstance(call.function.arguments["celsius"], bool)


def test_a_streamed_call_comes_in_a_chunk_before_the_last(ollama_client: ollama.Client) -> None:
    chunks = list(forced_call(ollama_client, stream=True))
    with_calls = [c for c in chunks if c.message.tool_calls]
    assert len(with_calls) == 1 and not with_calls[0].done
    assert chunks[-1].done
    assert "".join(c.message.content or "" for c in chunks) == ""
    (call,) = with_calls[0].message.tool_calls or []
    assert call.function.name == "get_weather"


def test_an_answer_that_is_not_a_call_stays_text(ollama_client: ollama.Client) -> None:
    reply = ollama_client.chat(
        model="tiny", messages=ASK, tools=[WEATHER], options={"temperature": 0, "num_predict": 30}
    )
    assert not reply.message.tool_calls
    plain = ollama_client.chat(
        model="tiny", messages=ASK, options={"temperature": 0, "num_predict": 30}
    )
    assert reply.message.content and plain.message.content


def test_tools_are_rendered_into_the_prompt(ollama_client: ollama.Client) -> None:
    without = ollama_client.chat(model="tiny", messages=ASK, options={"num_predict": 1})
    offered = ollama_client.chat(
        model="tiny", messages=ASK, tools=[WEATHER], options={"num_predict": 1}
    )
    assert without.prompt_eval_count and offered.prompt_eval_count
    assert offered.prompt_eval_count > without.prompt_eval_count + 50


def test_a_tool_result_is_fed_back_to_the_model(server: LiveServer) -> None:
    call = {"function": {"name": "get_weather", "arguments": {"city": "Paris", "celsius": True}}}
    turns = [
        *ASK,
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_name": "get_weather", "content": "21 degrees and sunny"},
    ]
    body = {"model": "tiny", "tools": [WEATHER], "stream": False, "options": {"num_predict": 1}}
    first = httpx.post(f"{server.base_url}/api/chat", json={**body, "messages": ASK}, timeout=30)
    after = httpx.post(f"{server.base_url}/api/chat", json={**body, "messages": turns}, timeout=30)
    assert first.status_code == after.status_code == 200
    grown = after.json()["prompt_eval_count"] - first.json()["prompt_eval_count"]
    # The call and the result ("21 degrees and sunny", the arguments) are both in the prompt.
    assert grown > len(json.dumps(call["function"]["arguments"])) // 2
