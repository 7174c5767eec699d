"""A reasoning model's thinking apart from its answer, on every API, with real clients.

The model is ``tests.scripted_gguf``'s: real llama.cpp, writing a known script, so each test
can say what the reasoning and the answer must be: after the prompt it opens a block, reasons
"hello world", closes it and answers "yes".
"""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import ollama
import openai
import pytest
from openai import OpenAI

from tests.live import LiveServer
from tests.scripted_gguf import (
    ANSWER,
    OPENED_TEMPLATE,
    REASONING,
    THINK_CLOSE,
    THINK_OPEN,
    write_scripted_gguf,
)
from tests.tiny_gguf import CHAT_TEMPLATE

# Typed as the clients take it (their TypedDicts, which a dict literal is not).
ASK: Any = [{"role": "user", "content": "Is it?"}]


@pytest.fixture(scope="module")
def thinkers(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> None:
    """``thinker``: opens its own block (Qwen's way); ``opener``: its template opens the block;
    ``plain``: the same model under a template with no tags, so nothing says it reasons."""
    folder = tmp_path_factory.mktemp("thinkers")
    gguf = write_scripted_gguf(folder / "scripted.gguf")
    server.herd("import", "thinker", str(gguf))
    for name, template in (("opener", OPENED_TEMPLATE), ("plain", CHAT_TEMPLATE)):
        (folder / name).write_text(template)
        server.herd("import", name, str(gguf), "--template", str(folder / name))


def test_chat_completions_answer_reasoning_content(client: OpenAI, thinkers: None) -> None:
    reply = client.chat.completions.create(model="thinker", messages=ASK)
    message = reply.choices[0].message
    assert message.content == ANSWER
    assert message.model_extra == {"reasoning_content": REASONING}
    assert reply.choices[0].finish_reason == "stop"


def test_a_streamed_chat_sends_reasoning_then_content(client: OpenAI, thinkers: None) -> None:
    stream = client.chat.completions.create(
        model="thinker",
        messages=ASK,
        stream=True,
    )
    reasoning, content, order = "", "", []
    for chunk in stream:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        said = (delta.model_extra or {}).get("reasoning_content")
        if said:
            reasoning += said
            order.append("reasoning")
        if delta.content:
            content += delta.content
            order.append("content")
    assert (reasoning, content) == (REASONING, ANSWER)
    assert order == sorted(order, reverse=True)  # all the reasoning first
    assert THINK_OPEN not in reasoning + content and THINK_CLOSE not in reasoning + content


def test_reasoning_effort_none_asks_the_template_not_to_reason(
    client: OpenAI, thinkers: None
) -> None:
    reply = client.chat.completions.create(
        model="thinker",
        messages=ASK,
        reasoning_effort="none",
    )
    assert reply.choices[0].message.content == ANSWER
    assert "reasoning_content" not in (reply.choices[0].message.model_extra or {})
    high = client.chat.completions.create(
        model="thinker",
        messages=ASK,
        reasoning_effort="high",
    )
    assert (high.choices[0].message.model_extra or {})["reasoning_content"] == REASONING


def test_reasoning_effort_on_a_model_that_does_not_reason_is_a_400(web_client: OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        web_client.chat.completions.create(
            model="tiny",
            messages=ASK,
            reasoning_effort="low",
        )
    assert caught.value.code == "unsupported_parameter"
    assert caught.value.param == "reasoning_effort"


def test_a_template_that_opens_the_block_starts_the_model_inside_it(
    client: OpenAI, thinkers: None
) -> None:
    reply = client.chat.completions.create(model="opener", messages=ASK)
    assert reply.choices[0].message.content == ANSWER
    assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == REASONING


def test_an_answer_cut_while_reasoning_keeps_what_was_reasoned(
    client: OpenAI, thinkers: None
) -> None:
    reply = client.chat.completions.create(
        model="thinker",
        messages=ASK,
        max_tokens=2,  # <think> and "hello"
    )
    assert reply.choices[0].finish_reason == "length"
    assert reply.choices[0].message.content == ""
    assert (reply.choices[0].message.model_extra or {})["reasoning_content"] == "hello"


def test_ollama_chat_answers_thinking(ollama_client: ollama.Client, thinkers: None) -> None:
    reply = ollama_client.chat(model="thinker", messages=ASK, think=True)
    assert (reply.message.thinking, reply.message.content) == (REASONING, ANSWER)
    quick = ollama_client.chat(model="thinker", messages=ASK, think=False)
    assert (quick.message.thinking, quick.message.content) == (None, ANSWER)
    assert (quick.prompt_eval_count or 0) > (reply.prompt_eval_count or 0)  # the empty block
    # Unset: the template's default, which for this one is to reason.
    default = ollama_client.chat(model="thinker", messages=ASK)
    assert default.message.thinking == REASONING


def test_ollama_chat_streams_thinking(ollama_client: ollama.Client, thinkers: None) -> None:
    chunks = list(ollama_client.chat(model="thinker", messages=ASK, think="high", stream=True))
    thinking = "".join(c.message.thinking or "" for c in chunks)
    content = "".join(c.message.content or "" for c in chunks)
    assert (thinking, content) == (REASONING, ANSWER)
    assert chunks[-1].done and chunks[-1].done_reason == "stop"


def test_ollama_generate_answers_thinking(ollama_client: ollama.Client, thinkers: None) -> None:
    reply = ollama_client.generate(model="thinker", prompt="Is it?", think=True)
    assert (reply.thinking, reply.response) == (REASONING, ANSWER)
    chunks = list(ollama_client.generate(model="thinker", prompt="Is it?", stream=True))
    assert "".join(c.thinking or "" for c in chunks) == REASONING
    assert "".join(c.response or "" for c in chunks) == ANSWER


def test_a_raw_generate_keeps_the_text_as_written(
    ollama_client: ollama.Client, thinkers: None
) -> None:
    reply = ollama_client.generate(model="thinker", prompt="Is it?\n", raw=True)
    assert reply.thinking is None
    assert reply.response == f"{THINK_OPEN} {REASONING}{THINK_CLOSE} {ANSWER}"


def test_plain_completions_keep_the_text_as_written(client: OpenAI, thinkers: None) -> None:
    reply = client.completions.create(model="thinker", prompt="Is it?\n")
    assert reply.choices[0].text == f"{THINK_OPEN} {REASONING}{THINK_CLOSE} {ANSWER}"


def test_the_record_can_name_the_tags_a_template_does_not_show(
    server: LiveServer, ollama_client: ollama.Client, client: OpenAI, thinkers: None
) -> None:
    before = client.chat.completions.create(model="plain", messages=ASK)
    assert before.choices[0].message.content == f"{THINK_OPEN} {REASONING}{THINK_CLOSE} {ANSWER}"
    with pytest.raises(ollama.ResponseError, match="does not support thinking"):
        ollama_client.chat(model="plain", messages=ASK, think=True)

    listed = httpx.get(f"{server.base_url}/api/models/", params={"name": "plain:latest"})
    (record,) = listed.json()
    url = f"{server.base_url}/api/models/{record['id']}/"
    refused = httpx.patch(url, json={"reasoning_tags": "<think>"})
    assert refused.status_code == 400 and "reasoning_tags" in refused.text
    changed = httpx.patch(url, json={"reasoning_tags": f"{THINK_OPEN} {THINK_CLOSE}"})
    assert changed.status_code == 200, changed.text
    assert "thinking" in changed.json()["capabilities"]

    after = client.chat.completions.create(model="plain", messages=ASK)
    assert after.choices[0].message.content == ANSWER
    assert (after.choices[0].message.model_extra or {})["reasoning_content"] == REASONING
    assert "thinking" in (ollama_client.show("plain").capabilities or [])


def test_responses_answer_a_reasoning_item_before_the_message(
    client: OpenAI, thinkers: None
) -> None:
    reply = client.responses.create(model="thinker", input="Is it?")
    assert [item.type for item in reply.output] == ["reasoning", "message"]
    reasoning = reply.output[0]
    assert reasoning.type == "reasoning" and reasoning.content is not None
    assert [c.text for c in reasoning.content] == [REASONING]
    assert reply.output_text == ANSWER
    assert reply.usage is not None and reply.usage.output_tokens_details.reasoning_tokens > 0

    quick = client.responses.create(model="thinker", input="Is it?", reasoning={"effort": "none"})
    assert [item.type for item in quick.output] == ["message"]
    assert quick.reasoning is not None and quick.reasoning.effort == "none"


def test_responses_stream_reasoning_text_events(client: OpenAI, thinkers: None) -> None:
    with client.responses.stream(model="thinker", input="Is it?") as stream:
        events = list(stream)
    reasoning = "".join(e.delta for e in events if e.type == "response.reasoning_text.delta")
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert (reasoning, text) == (REASONING, ANSWER)
    final = events[-1]
    assert final.type == "response.completed"
    assert [item.type for item in final.response.output] == ["reasoning", "message"]


def test_responses_refuse_reasoning_effort_for_a_model_that_does_not_reason(
    web_client: OpenAI,
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        web_client.responses.create(model="tiny", input="Is it?", reasoning={"effort": "high"})
    assert caught.value.param == "reasoning.effort"


def test_messages_answer_a_thinking_block_before_the_text(
    server: LiveServer, thinkers: None
) -> None:
    claude = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0)
    reply = claude.messages.create(model="thinker", max_tokens=64, messages=ASK)
    assert [block.type for block in reply.content] == ["thinking", "text"]
    thinking, text = reply.content
    assert thinking.type == "thinking" and thinking.thinking == REASONING
    assert text.type == "text" and text.text == ANSWER
    assert reply.stop_reason == "end_turn"

    quick = claude.messages.create(
        model="thinker", max_tokens=64, messages=ASK, thinking={"type": "disabled"}
    )
    assert [block.type for block in quick.content] == ["text"]


def test_messages_stream_thinking_deltas(server: LiveServer, thinkers: None) -> None:
    claude = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0)
    with claude.messages.stream(
        model="thinker",
        max_tokens=64,
        messages=ASK,
        thinking={"type": "enabled", "budget_tokens": 1024},
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert "".join(d.thinking for d in deltas if d.type == "thinking_delta") == REASONING
    assert "".join(d.text for d in deltas if d.type == "text_delta") == ANSWER
    assert [block.type for block in final.content] == ["thinking", "text"]


def test_messages_thinking_on_a_model_that_does_not_reason_answers_text(
    server: LiveServer,
) -> None:
    """Claude Code asks any model to think: one that does not answers as it would."""
    claude = anthropic.Anthropic(base_url=server.base_url, api_key="unused", max_retries=0)
    reply = claude.messages.create(
        model="tiny",
        max_tokens=4,
        messages=ASK,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    assert {block.type for block in reply.content} <= {"text"}
