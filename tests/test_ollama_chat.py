"""``/api/chat`` through the official ollama client: streaming, options, format, timings."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import ollama
import pytest

from tests.live import LiveServer

HELLO = [{"role": "user", "content": "hello"}]
GREEDY = {"temperature": 0, "num_predict": 24}


def answer(client: ollama.Client, model: str = "tiny", **kwargs: Any) -> Any:
    """A ChatResponse, or with ``stream=True`` an iterator of them."""
    kwargs.setdefault("messages", HELLO)
    return client.chat(model=model, **kwargs)


def assert_consistent_durations(final: Any) -> None:
    assert final.total_duration > 0
    assert final.eval_duration > 0
    assert final.prompt_eval_duration > 0
    assert final.load_duration >= 0
    assert final.eval_duration <= final.total_duration
    assert final.prompt_eval_duration <= final.total_duration
    assert final.load_duration <= final.total_duration
    parts = final.load_duration + final.prompt_eval_duration + final.eval_duration
    assert parts <= final.total_duration


def test_it_answers_a_chat_in_one_object(ollama_client: ollama.Client) -> None:
    reply = answer(ollama_client, options=GREEDY)
    assert reply.done is True
    assert reply.message.role == "assistant"
    assert reply.message.content
    assert reply.done_reason == "length"
    assert reply.eval_count == 24
    assert reply.prompt_eval_count and reply.prompt_eval_count > 0
    assert reply.model == "tiny"
    assert reply.created_at
    assert_consistent_durations(reply)


def test_it_streams_chunks_that_add_up_to_the_whole_answer(ollama_client: ollama.Client) -> None:
    # The slow model: the tiny one is fast enough that its tokens arrive in one piece.
    whole = answer(ollama_client, model="slow", options=GREEDY)
    chunks = list(answer(ollama_client, model="slow", options=GREEDY, stream=True))
    assert len(chunks) > 2
    assert all(not c.done for c in chunks[:-1])
    final = chunks[-1]
    assert final.done is True
    assert final.done_reason == whole.done_reason
    assert "".join(c.message.content or "" for c in chunks) == whole.message.content
    assert final.eval_count == whole.eval_count
    assert final.prompt_eval_count == whole.prompt_eval_count
    assert_consistent_durations(final)


def test_the_stream_is_ndjson_by_default(server: LiveServer) -> None:
    with httpx.stream(
        "POST",
        f"{server.base_url}/api/chat",
        json={"model": "tiny", "messages": HELLO, "options": {"num_predict": 5}},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/x-ndjson")
        lines = [json.loads(line) for line in response.iter_lines() if line]
    assert [line["done"] for line in lines] == [False] * (len(lines) - 1) + [True]
    for key in (
        "total_duration",
        "load_duration",
        "prompt_eval_count",
        "prompt_eval_duration",
        "eval_count",
        "eval_duration",
    ):
        assert isinstance(lines[-1][key], int), key


def test_the_durations_are_measured_not_made_up(ollama_client: ollama.Client) -> None:
    short = answer(ollama_client, model="slow", options={"temperature": 0, "num_predict": 4})
    long = answer(ollama_client, model="slow", options={"temperature": 0, "num_predict": 120})
    assert long.eval_count == 120 and short.eval_count == 4
    assert long.eval_duration > 5 * short.eval_duration
    assert long.total_duration > short.total_duration


def test_the_same_seed_gives_the_same_answer(ollama_client: ollama.Client) -> None:
    def sample(seed: int) -> str:
        options = {"temperature": 1.0, "seed": seed, "num_predict": 24}
        return answer(ollama_client, model="slow", options=options).message.content or ""

    first = sample(7)
    assert sample(7) == first
    assert sample(8) != first


def test_temperature_zero_is_deterministic_and_high_temperature_is_not(
    ollama_client: ollama.Client,
) -> None:
    greedy = {"temperature": 0, "num_predict": 30}
    assert answer(ollama_client, options=greedy).message.content == (
        answer(ollama_client, options=greedy).message.content
    )
    hot = [
        answer(ollama_client, options={"temperature": 1.5, "num_predict": 30}).message.content
        for _ in range(3)
    ]
    assert len(set(hot)) > 1


@pytest.mark.parametrize(
    "narrowing", [{"top_k": 1}, {"top_p": 0.0001}, {"min_p": 1.0}], ids=["top_k", "top_p", "min_p"]
)
def test_narrowing_the_candidates_to_one_makes_sampling_greedy(
    ollama_client: ollama.Client, narrowing: dict[str, Any]
) -> None:
    greedy = answer(ollama_client, options={"temperature": 0, "num_predict": 30})
    hot = {"temperature": 1.5, "num_predict": 30, "seed": 5}
    assert answer(ollama_client, options=hot).message.content != greedy.message.content
    narrowed = answer(ollama_client, options={**hot, **narrowing})
    assert narrowed.message.content == greedy.message.content


@pytest.mark.parametrize(
    "penalty",
    [{"repeat_penalty": 1.8}, {"presence_penalty": 2.0}, {"frequency_penalty": 2.0}],
    ids=["repeat", "presence", "frequency"],
)
def test_penalties_change_the_answer(ollama_client: ollama.Client, penalty: dict[str, Any]) -> None:
    plain = {"temperature": 0, "num_predict": 200, "repeat_penalty": 1.0}
    base = answer(ollama_client, model="slow", options=plain).message.content
    assert answer(ollama_client, model="slow", options={**plain, **penalty}).message.content != base


def test_a_stop_string_ends_the_answer_before_it(ollama_client: ollama.Client) -> None:
    options = {"temperature": 0, "num_predict": 30}
    free = answer(ollama_client, model="slow", options=options).message.content or ""
    stop = free[10:13]
    reply = answer(ollama_client, model="slow", options={**options, "stop": [stop]})
    assert reply.done_reason == "stop"
    assert reply.message.content == free[: free.index(stop)]


def test_format_json_returns_json(ollama_client: ollama.Client) -> None:
    reply = answer(ollama_client, format="json", options={"temperature": 1, "seed": 3})
    assert reply.done_reason == "stop"
    json.loads(reply.message.content or "")


def test_a_format_schema_returns_json_that_validates(ollama_client: ollama.Client) -> None:
    schema = {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "enum": ["yes", "no"]},
            "sure": {"type": "boolean"},
        },
        "required": ["answer", "sure"],
        "additionalProperties": False,
    }
    reply = answer(ollama_client, format=schema, options={"temperature": 0.7, "seed": 1})
    jsonschema.validate(json.loads(reply.message.content or ""), schema)


def test_a_conversation_is_rendered_with_the_chat_template(ollama_client: ollama.Client) -> None:
    one = answer(ollama_client, options={"num_predict": 1})
    longer = answer(
        ollama_client,
        messages=[
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello"},
            {"role": "assistant", "content": "hello world"},
            {"role": "user", "content": "hello"},
        ],
        options={"num_predict": 1},
    )
    assert one.prompt_eval_count and longer.prompt_eval_count
    assert longer.prompt_eval_count > one.prompt_eval_count + 8


def test_images_on_a_model_without_vision_are_a_clear_400(web_ollama_client: ollama.Client) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"\0" * 32
    with pytest.raises(ollama.ResponseError) as caught:
        web_ollama_client.chat(
            model="tiny", messages=[{"role": "user", "content": "what is this?", "images": [png]}]
        )
    assert caught.value.status_code == 400
    assert "does not support images" in caught.value.error
