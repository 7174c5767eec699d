"""Response fields as OpenAI's document requires them: ``message.refusal`` on every chat
completion, ``logprobs`` with ``content`` and ``refusal`` (whole and streamed), files without
a null ``status_details``, and list pages whose ``first_id``/``last_id`` are strings or
absent."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from openai import OpenAI

from inference_app.batches.views import page
from tests.live import LiveServer

HELLO = [{"role": "user", "content": "hi"}]


def chat(server: LiveServer, **fields: Any) -> httpx.Response:
    body = {"model": "tiny", "messages": HELLO, "max_tokens": 4, **fields}
    return httpx.post(f"{server.base_url}/v1/chat/completions", json=body, timeout=60)


def sse_objects(response: httpx.Response) -> list[dict[str, Any]]:
    lines = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    return [json.loads(line) for line in lines if line != "[DONE]"]


@pytest.mark.live
def test_every_chat_message_carries_a_null_refusal(server: LiveServer) -> None:
    reply = chat(server, n=2)
    assert reply.status_code == 200, reply.text
    for choice in reply.json()["choices"]:
        assert "refusal" in choice["message"] and choice["message"]["refusal"] is None
    forced = chat(
        server,
        tools=[{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        tool_choice="required",
        max_tokens=40,
    )
    assert forced.status_code == 200, forced.text
    assert forced.json()["choices"][0]["message"]["refusal"] is None


@pytest.mark.live
def test_logprobs_carry_content_and_refusal_whole_and_streamed(server: LiveServer) -> None:
    whole = chat(server, logprobs=True, top_logprobs=2).json()["choices"][0]["logprobs"]
    assert set(whole) == {"content", "refusal"}
    assert whole["refusal"] is None and whole["content"]
    streamed = chat(server, logprobs=True, stream=True)
    entries = [
        c["choices"][0]["logprobs"]
        for c in sse_objects(streamed)
        if c["choices"] and c["choices"][0]["logprobs"] is not None
    ]
    assert entries
    assert all(set(e) == {"content", "refusal"} and e["refusal"] is None for e in entries)


@pytest.mark.live
def test_the_openai_client_reads_the_refusal_and_logprobs(client: OpenAI) -> None:
    reply = client.chat.completions.create(
        model="tiny",
        messages=[{"role": "user", "content": "hi"}],
        max_tokens=3,
        logprobs=True,
    )
    choice = reply.choices[0]
    assert choice.message.refusal is None
    assert choice.logprobs is not None and choice.logprobs.content
    assert choice.logprobs.refusal is None


@pytest.mark.live
def test_files_have_no_null_status_details(client: OpenAI, server: LiveServer) -> None:
    uploaded = client.files.create(file=("a.jsonl", b"{}\n"), purpose="batch")
    for body in (
        httpx.get(f"{server.base_url}/v1/files/{uploaded.id}", timeout=30).json(),
        *httpx.get(f"{server.base_url}/v1/files", timeout=30).json()["data"],
    ):
        assert isinstance(body.get("status_details", ""), str), body
    client.files.delete(uploaded.id)


def test_an_empty_page_has_string_ids_or_none_at_all() -> None:
    assert page([], has_more=False) == {"object": "list", "data": [], "has_more": False}
    files = page([], has_more=False, ids_required=True)
    assert files["first_id"] == files["last_id"] == "" and files["has_more"] is False
    full = page([{"id": "a"}, {"id": "b"}], has_more=True)
    assert (full["first_id"], full["last_id"], full["has_more"]) == ("a", "b", True)
