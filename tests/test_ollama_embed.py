"""``/api/embed`` and the older ``/api/embeddings`` through the official ollama client."""

from __future__ import annotations

import math

import ollama
import pytest

LONG = "hello " * 5000  # over the tiny model's 4096-token context


def norm(vector: list[float]) -> float:
    return math.sqrt(sum(x * x for x in vector))


def test_it_embeds_one_string_as_a_unit_vector(ollama_client: ollama.Client) -> None:
    reply = ollama_client.embed(model="tiny", input="hello world")
    (vector,) = reply.embeddings
    assert len(vector) == 64
    assert math.isclose(norm(list(vector)), 1.0, rel_tol=1e-3)
    assert reply.model == "tiny"
    assert reply.prompt_eval_count and reply.prompt_eval_count > 0
    assert reply.total_duration and reply.load_duration is not None
    assert reply.load_duration <= reply.total_duration


def test_it_embeds_a_list_in_order(ollama_client: ollama.Client) -> None:
    reply = ollama_client.embed(model="tiny", input=["hello", "world", "hello"])
    first, second, third = reply.embeddings
    assert first == third
    assert first != second
    one = ollama_client.embed(model="tiny", input="world").embeddings[0]
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(one, second, strict=True))


def test_truncate_false_refuses_an_input_over_the_context(ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        ollama_client.embed(model="tiny", input=LONG, truncate=False)
    assert caught.value.status_code == 400
    assert "context" in caught.value.error


def test_truncate_true_embeds_the_start_of_a_long_input(ollama_client: ollama.Client) -> None:
    reply = ollama_client.embed(model="tiny", input=LONG, truncate=True)
    assert len(reply.embeddings[0]) == 64
    assert reply.prompt_eval_count and reply.prompt_eval_count <= 4096


def test_the_older_endpoint_gives_the_same_direction_unnormalized(
    ollama_client: ollama.Client,
) -> None:
    raw = list(ollama_client.embeddings(model="tiny", prompt="hello world").embedding)
    unit = list(ollama_client.embed(model="tiny", input="hello world").embeddings[0])
    length = norm(raw)
    assert not math.isclose(length, 1.0, rel_tol=1e-2)
    assert all(math.isclose(a / length, b, abs_tol=1e-5) for a, b in zip(raw, unit, strict=True))


def test_an_unknown_model_is_a_404(web_ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        web_ollama_client.embed(model="nope", input="x")
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'nope' not found"
