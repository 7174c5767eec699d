"""Errors under ``/api`` come as Ollama gives them: ``{"error": "..."}`` and its status."""

from __future__ import annotations

from typing import Any

import httpx
import ollama
import pytest

from tests.inprocess import InProcessServer
from tests.live import LiveServer

HELLO = [{"role": "user", "content": "hello"}]


@pytest.mark.parametrize("path", ["/api/chat", "/api/generate", "/api/embed", "/api/embeddings"])
def test_an_unknown_model_is_a_404_naming_it(web: InProcessServer, path: str) -> None:
    body = {"model": "nope:7b", "messages": HELLO, "prompt": "hi", "input": "hi"}
    reply = web.post(f"{web.base_url}{path}", json=body, timeout=30)
    assert reply.status_code == 404
    assert reply.json() == {"error": "model 'nope:7b' not found"}


def test_the_ollama_client_sees_the_404(web_ollama_client: ollama.Client) -> None:
    with pytest.raises(ollama.ResponseError) as caught:
        web_ollama_client.chat(model="nope", messages=HELLO)
    assert caught.value.status_code == 404
    assert caught.value.error == "model 'nope' not found"


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"messages": HELLO}, "model"),
        ({"model": "tiny", "messages": HELLO, "options": {"temperature": "hot"}}, "temperature"),
        ({"model": "tiny", "messages": HELLO, "options": {"top_p": 2}}, "top_p"),
        ({"model": "tiny", "messages": HELLO, "options": {"num_predict": -5}}, "num_predict"),
        ({"model": "tiny", "messages": HELLO, "keep_alive": "5 minutes"}, "keep_alive"),
        ({"model": "tiny", "messages": HELLO, "format": "yaml"}, "format"),
        ({"model": "tiny", "messages": HELLO, "format": {"type": 12}}, "format"),
        ({"model": "tiny", "messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"model": "tiny", "messages": HELLO, "tools": [{"type": "function"}]}, "function"),
        ({"model": "tiny", "messages": HELLO, "top_logprobs": 99}, "top_logprobs"),
    ],
)
def test_a_bad_field_is_a_400_naming_it(
    web: InProcessServer, body: dict[str, Any], named: str
) -> None:
    reply = web.post(f"{web.base_url}/api/chat", json=body, timeout=30)
    assert reply.status_code == 400
    (message,) = reply.json().values()
    assert list(reply.json()) == ["error"]
    assert named in message


def test_a_body_that_is_not_json_is_a_400(web: InProcessServer) -> None:
    reply = web.post(f"{web.base_url}/api/generate", content=b"{nope", timeout=30)
    assert reply.status_code == 400
    assert "JSON" in reply.json()["error"]


def test_a_wrong_method_is_a_405_in_ollama_shape(web: InProcessServer) -> None:
    reply = web.get(f"{web.base_url}/api/chat", timeout=30)
    assert reply.status_code == 405
    assert "error" in reply.json()


def test_a_prompt_over_the_context_with_truncate_false_is_a_400(server: LiveServer) -> None:
    body = {"model": "tiny", "prompt": "hello " * 5000, "raw": True, "truncate": False}
    reply = httpx.post(f"{server.base_url}/api/generate", json=body, timeout=60)
    assert reply.status_code == 400
    assert "context length" in reply.json()["error"]


def test_a_body_over_the_limit_is_a_413(web: InProcessServer) -> None:
    from tests.conftest import LIVE_MAX_BODY

    body = {"model": "tiny", "prompt": "x" * (LIVE_MAX_BODY + 10)}
    reply = web.post(f"{web.base_url}/api/generate", json=body, timeout=30)
    assert reply.status_code == 413
    assert "error" in reply.json()
