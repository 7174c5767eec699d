"""``/api/generate`` through the official ollama client: templated, raw and system prompts."""

from __future__ import annotations

import ollama
import pytest

GREEDY = {"temperature": 0, "num_predict": 20}


def test_it_answers_a_prompt_in_one_object(ollama_client: ollama.Client) -> None:
    reply = ollama_client.generate(model="tiny", prompt="hello", options=GREEDY)
    assert reply.done is True
    assert reply.response
    assert reply.done_reason == "length"
    assert reply.eval_count == 20
    assert reply.prompt_eval_count and reply.prompt_eval_count > 0
    assert reply.total_duration and reply.eval_duration and reply.prompt_eval_duration
    assert reply.load_duration is not None
    assert reply.eval_duration <= reply.total_duration
    assert reply.prompt_eval_duration <= reply.total_duration
    assert reply.load_duration <= reply.total_duration


def test_it_streams_chunks_that_add_up_to_the_whole_answer(ollama_client: ollama.Client) -> None:
    # The slow model: the tiny one is fast enough that its tokens arrive in one piece.
    whole = ollama_client.generate(model="slow", prompt="hello", options=GREEDY)
    chunks = list(ollama_client.generate(model="slow", prompt="hello", options=GREEDY, stream=True))
    assert len(chunks) > 2
    assert "".join(c.response or "" for c in chunks) == whole.response
    assert chunks[-1].done and chunks[-1].done_reason == whole.done_reason
    assert chunks[-1].eval_count == whole.eval_count


def test_a_raw_prompt_skips_the_chat_template(ollama_client: ollama.Client) -> None:
    templated = ollama_client.generate(model="tiny", prompt="hello", options=GREEDY)
    raw = ollama_client.generate(model="tiny", prompt="hello", raw=True, options=GREEDY)
    assert raw.prompt_eval_count and templated.prompt_eval_count
    # BOS and "hello" against the whole "<|user|>\nhello<|end|>\n<|assistant|>\n" turn.
    assert raw.prompt_eval_count <= 6
    assert templated.prompt_eval_count > raw.prompt_eval_count + 10
    assert raw.response != templated.response


def test_a_system_prompt_goes_before_the_prompt(ollama_client: ollama.Client) -> None:
    plain = ollama_client.generate(model="tiny", prompt="hello", options=GREEDY)
    with_system = ollama_client.generate(
        model="tiny", prompt="hello", system="answer yes or no", options=GREEDY
    )
    assert with_system.prompt_eval_count and plain.prompt_eval_count
    assert with_system.prompt_eval_count > plain.prompt_eval_count + 5
    assert with_system.response != plain.response


def test_format_json_constrains_a_generation(ollama_client: ollama.Client) -> None:
    import json

    reply = ollama_client.generate(
        model="tiny", prompt="hello", format="json", options={"temperature": 1, "seed": 3}
    )
    assert reply.done_reason == "stop"
    json.loads(reply.response or "")


def test_images_on_a_model_without_vision_are_a_clear_400(web_ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        web_ollama_client.generate(model="tiny", prompt="what is this?", images=[b"\x89PNG\r\n"])
    assert caught.value.status_code == 400
    assert "does not support images" in caught.value.error
