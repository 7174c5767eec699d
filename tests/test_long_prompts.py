"""Prompts longer than the context: ``/api`` cuts them down to fit as Ollama does, ``/v1``
refuses them unless the model record opts in. The tiny model's context is 4096 tokens."""

from __future__ import annotations

from typing import Any

import httpx
import ollama
from openai import OpenAI

from tests.live import LiveServer

N_CTX = 4096
SYSTEM: dict[str, Any] = {"role": "system", "content": "You answer briefly. " * 12}
# Tools as Open WebUI offers its built-in ones with every chat it starts in the browser.
OPEN_WEBUI_TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {
                "type": "object",
                "properties": {
                    "query": {"type": "string", "description": "What to look for"},
                    "count": {"type": "integer", "description": "How many results"},
                },
                "required": ["query"],
            },
        },
    }
    for name, description in (
        ("search_web", "Search the public web for current information."),
        ("fetch_url", "Fetch a web page and return its text."),
        ("query_knowledge_files", "Search the files attached to this chat."),
        ("search_memories", "Search what the user asked to be remembered."),
        ("get_current_timestamp", "The current date and time."),
    )
]


def long_chat(turns: int) -> list[dict[str, Any]]:
    """A system message, ``turns`` exchanges of about 150 tokens each, then a question."""
    messages = [SYSTEM]
    for n in range(turns):
        messages.append({"role": "user", "content": f"question {n} " + "hello world " * 30})
        messages.append({"role": "assistant", "content": f"answer {n} " + "yes no " * 30})
    messages.append({"role": "user", "content": "and the last question?"})
    return messages


def prompt_tokens_unless_too_long(server: LiveServer, messages: list[dict[str, Any]]) -> int:
    """The prompt's tokens as the server counts them, or 0 when it is over the context
    (``truncate: false`` refuses it rather than cut it)."""
    reply = httpx.post(
        f"{server.base_url}/api/chat",
        json={
            "model": "tiny",
            "messages": messages,
            "tools": OPEN_WEBUI_TOOLS,
            "stream": False,
            "truncate": False,
            "options": {"num_predict": 1},
        },
        timeout=60,
    )
    if reply.status_code == 400:
        return 0
    assert reply.status_code == 200, reply.text
    return int(reply.json()["prompt_eval_count"])


def test_open_webuis_long_streamed_chat_is_answered(
    ollama_client: ollama.Client, server: LiveServer
) -> None:
    messages = long_chat(40)
    assert prompt_tokens_unless_too_long(server, messages) == 0  # far over the context
    chunks = list(
        ollama_client.chat(model="tiny", messages=messages, tools=OPEN_WEBUI_TOOLS, stream=True)
    )
    final = chunks[-1]
    assert final.done and final.done_reason in ("stop", "length")
    assert "".join(c.message.content or "" for c in chunks) or final.eval_count
    kept = final.prompt_eval_count or 0
    # Room is left for the answer: its num_predict (HERD_DEFAULT_MAX_TOKENS here), at most a
    # quarter of the context.
    assert 0 < kept <= N_CTX - N_CTX // 4
    # What was kept is the system message, the tools and the latest whole exchanges: the
    # same prompt sent as it is counts the same, and one exchange more would not fit.
    counts: list[int] = []
    while not counts or 0 < counts[-1] < kept:
        latest = messages[len(messages) - 2 * len(counts) - 1 :]
        counts.append(prompt_tokens_unless_too_long(server, [SYSTEM, *latest]))
    assert counts[-1] == kept
    latest = messages[len(messages) - 2 * len(counts) - 1 :]
    one_more = prompt_tokens_unless_too_long(server, [SYSTEM, *latest])
    assert one_more == 0 or one_more > N_CTX - N_CTX // 4


def test_truncate_false_keeps_the_error(server: LiveServer) -> None:
    reply = httpx.post(
        f"{server.base_url}/api/chat",
        json={"model": "tiny", "messages": long_chat(40), "truncate": False, "stream": False},
        timeout=60,
    )
    assert reply.status_code == 400
    assert "context length" in reply.json()["error"]


def test_a_long_generate_prompt_keeps_its_end(ollama_client: ollama.Client) -> None:
    for raw in (True, False):
        reply = ollama_client.generate(
            model="tiny", prompt="hello " * 5000 + "the end", raw=raw, options={"num_predict": 4}
        )
        assert reply.done
        assert N_CTX - 200 < (reply.prompt_eval_count or 0) <= N_CTX - 4


def test_v1_refuses_unless_the_model_record_opts_in(
    client: OpenAI, ollama_client: ollama.Client, server: LiveServer
) -> None:
    messages: Any = long_chat(40)
    refused = httpx.post(
        f"{server.base_url}/v1/chat/completions",
        json={"model": "tiny", "messages": messages},
        timeout=60,
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "context_length_exceeded"

    ollama_client.copy("tiny", "tiny-cut")
    listed = httpx.get(f"{server.base_url}/api/models/", params={"name": "tiny-cut:latest"})
    (record,) = listed.json()
    patched = httpx.patch(
        f"{server.base_url}/api/models/{record['id']}/",
        json={"default_options": {"truncate": True}},
    )
    assert patched.status_code == 200, patched.text
    reply = client.chat.completions.create(model="tiny-cut", messages=messages, max_tokens=8)
    assert reply.usage is not None
    assert 0 < reply.usage.prompt_tokens <= N_CTX - 8
    assert reply.choices[0].finish_reason in ("stop", "length")
