"""Loading and unloading with ``keep_alive`` and empty requests, seen through ``/api/ps``.

Each test uses a model of its own (the tiny GGUF under another name), so unloading it never
touches what other tests rely on."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import ollama
import pytest

from tests.live import LiveServer


@pytest.fixture
def own_model(server: LiveServer, tiny_gguf: Path, request: pytest.FixtureRequest) -> str:
    name = f"ka-{request.node.name.replace('_', '-')[5:40]}"
    server.herd("import", name, str(tiny_gguf))
    return f"{name}:latest"


def held(client: ollama.Client, name: str) -> list[Any]:
    return [m for m in client.ps().models if m.name == name]


def wait_until(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s")
        time.sleep(0.1)


def test_an_empty_chat_loads_the_model_and_keep_alive_0_unloads_it(
    ollama_client: ollama.Client, own_model: str
) -> None:
    loaded = ollama_client.chat(model=own_model, messages=[])
    assert loaded.done and loaded.done_reason == "load"
    assert loaded.eval_count == 0
    wait_until(lambda: bool(held(ollama_client, own_model)))

    unloaded = ollama_client.chat(model=own_model, messages=[], keep_alive=0)
    assert unloaded.done and unloaded.done_reason == "unload"
    wait_until(lambda: not held(ollama_client, own_model))


def test_an_empty_generate_loads_and_unloads_too(
    ollama_client: ollama.Client, own_model: str
) -> None:
    assert ollama_client.generate(model=own_model, prompt="").done_reason == "load"
    wait_until(lambda: bool(held(ollama_client, own_model)))
    assert ollama_client.generate(model=own_model, keep_alive=0).done_reason == "unload"
    wait_until(lambda: not held(ollama_client, own_model))


def test_keep_alive_0_unloads_the_model_once_answered(
    ollama_client: ollama.Client, own_model: str
) -> None:
    reply = ollama_client.generate(
        model=own_model, prompt="hi", keep_alive=0, options={"num_predict": 3}
    )
    assert reply.eval_count == 3
    wait_until(lambda: not held(ollama_client, own_model))


def test_a_short_keep_alive_expires_on_its_own(
    ollama_client: ollama.Client, own_model: str
) -> None:
    answered = time.monotonic()
    ollama_client.generate(
        model=own_model, prompt="hi", keep_alive="2s", options={"num_predict": 2}
    )
    wait_until(lambda: bool(held(ollama_client, own_model)), timeout=2)
    wait_until(lambda: not held(ollama_client, own_model), timeout=10)
    # Gone after its two seconds, within a heartbeat or two.
    assert 1.5 < time.monotonic() - answered < 6


def test_a_duration_keep_alive_sets_expires_at(
    ollama_client: ollama.Client, own_model: str
) -> None:
    asked_at = datetime.now(UTC)
    ollama_client.generate(
        model=own_model, prompt="hi", keep_alive="10m", options={"num_predict": 2}
    )
    wait_until(lambda: bool(held(ollama_client, own_model)))
    (model,) = held(ollama_client, own_model)
    assert model.expires_at is not None
    ahead = (model.expires_at - asked_at).total_seconds()
    assert 590 < ahead < 615

    # Seconds work as well as duration strings.
    ollama_client.generate(model=own_model, prompt="hi", keep_alive=120, options={"num_predict": 2})
    wait_until(lambda: 100 < _ahead(held(ollama_client, own_model)[0].expires_at) < 125)


def test_a_negative_keep_alive_keeps_the_model_forever(
    ollama_client: ollama.Client, own_model: str
) -> None:
    ollama_client.chat(model=own_model, messages=[], keep_alive=-1)
    wait_until(lambda: bool(held(ollama_client, own_model)))
    wait_until(lambda: held(ollama_client, own_model)[0].expires_at.year > 2100)
    ollama_client.chat(model=own_model, messages=[], keep_alive=0)
    wait_until(lambda: not held(ollama_client, own_model))


def test_num_ctx_loads_the_model_with_that_context(
    ollama_client: ollama.Client, own_model: str
) -> None:
    ollama_client.generate(model=own_model, prompt="hi", options={"num_ctx": 512, "num_predict": 1})
    wait_until(lambda: [m.context_length for m in held(ollama_client, own_model)] == [512])
    # A longer prompt is cut down to that context, less the one token of the answer.
    long = ollama_client.generate(
        model=own_model, prompt="hello " * 600, options={"num_ctx": 512, "num_predict": 1}
    )
    assert 400 < (long.prompt_eval_count or 0) <= 511
    ollama_client.generate(
        model=own_model, prompt="hi", options={"num_ctx": 1024, "num_predict": 1}
    )
    wait_until(lambda: [m.context_length for m in held(ollama_client, own_model)] == [1024])


def _ahead(moment: datetime | None) -> float:
    assert moment is not None
    return (moment - datetime.now(UTC)).total_seconds()
