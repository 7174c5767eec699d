"""Structured output keeps the order in which the schema declares its properties (clients
rely on it: a "reasoning" field written before the answer), through instructor over ``/v1``
and the ollama client's ``format``."""

from __future__ import annotations

import json
from typing import Any, Literal

import instructor
import ollama
from openai import OpenAI
from pydantic import BaseModel


class City(BaseModel):
    """Declared in an order that is not the alphabetical one."""

    name: Literal["Paris", "Oslo", "Lima"]
    country: Literal["France", "Norway", "Peru"]
    capital: bool


DECLARED = ["name", "country", "capital"]
ASK: list[Any] = [{"role": "user", "content": "A city, please."}]


def test_instructor_json_schema_mode_keeps_the_declared_order(client: OpenAI) -> None:
    patched = instructor.from_openai(client, mode=instructor.Mode.JSON_SCHEMA)
    city, completion = patched.chat.completions.create_with_completion(
        model="tiny", response_model=City, messages=ASK, max_tokens=200, seed=3, max_retries=0
    )
    assert isinstance(city, City)
    assert list(json.loads(completion.choices[0].message.content)) == DECLARED


def test_instructor_tools_mode_keeps_the_declared_order(client: OpenAI) -> None:
    patched = instructor.from_openai(client, mode=instructor.Mode.TOOLS)
    city, completion = patched.chat.completions.create_with_completion(
        model="tiny", response_model=City, messages=ASK, max_tokens=200, seed=3, max_retries=0
    )
    assert isinstance(city, City)
    (call,) = completion.choices[0].message.tool_calls
    assert call.function.name == "City"
    assert list(json.loads(call.function.arguments)) == DECLARED


def test_an_ollama_format_schema_keeps_the_declared_order(ollama_client: ollama.Client) -> None:
    reply = ollama_client.chat(
        model="tiny",
        messages=ASK,
        format=City.model_json_schema(),
        options={"seed": 3, "num_predict": 200},
    )
    assert reply.done_reason == "stop"
    assert list(json.loads(reply.message.content or "")) == DECLARED
    City.model_validate_json(reply.message.content or "")
