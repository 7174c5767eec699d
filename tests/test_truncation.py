"""Cutting an over-long chat down to the context (``workers.engine.truncation``), with the tiny
model's real tokenizer and chat template, and the context a model loads with by default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import llama_cpp
import pytest

from tests.tiny_gguf import CHAT_TEMPLATE
from workers.broker.wire import ModelSpec
from workers.engine.generation import tokenize_prompt
from workers.engine.prompts import render_chat_prompt
from workers.engine.truncation import PromptTooLong, answer_room, fit_chat
from workers.worker.residency import MIN_DEFAULT_CONTEXT, default_context, kv_layout

SYSTEM = {"role": "system", "content": "You are terse."}


@pytest.fixture(scope="module")
def vocab(tiny_gguf: Path) -> Iterator[llama_cpp.Llama]:
    llama = llama_cpp.Llama(model_path=str(tiny_gguf), vocab_only=True, verbose=False)
    yield llama
    llama.close()


class Renderer:
    """The worker's render (template, then tokenizer), remembering what it rendered last."""

    def __init__(self, llama: llama_cpp.Llama) -> None:
        self.llama = llama
        self.messages: list[dict[str, Any]] = []
        self.tools: list[dict[str, Any]] | None = None

    def __call__(self, messages: list[dict[str, Any]], tools: Any) -> list[int]:
        self.messages, self.tools = messages, tools
        return tokenize_prompt(self.llama, self.text(messages, tools))

    def text(self, messages: list[dict[str, Any]], tools: Any) -> str:
        return render_chat_prompt(
            CHAT_TEMPLATE, messages, bos_token="<s>", eos_token="</s>", tools=tools
        )


def conversation(turns: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [SYSTEM]
    for n in range(turns):
        messages.append({"role": "user", "content": f"question {n}: " + "hello world " * 20})
        messages.append({"role": "assistant", "content": f"answer {n}: " + "yes no " * 20})
    messages.append({"role": "user", "content": "the last question"})
    return messages


def test_a_chat_that_fits_is_left_whole(vocab: llama_cpp.Llama) -> None:
    render = Renderer(vocab)
    messages = conversation(2)
    assert fit_chat(messages, None, render, 4096) == render(messages, None)


def test_the_oldest_turns_go_whole_and_the_system_message_stays(vocab: llama_cpp.Llama) -> None:
    render = Renderer(vocab)
    messages = conversation(30)
    limit = 600
    assert len(render(messages, None)) > 3 * limit
    tokens = fit_chat(messages, None, render, limit)
    kept = render.messages
    assert len(tokens) <= limit
    assert kept[0] == SYSTEM
    assert kept[1]["role"] == "user"  # a whole turn starts what is kept
    assert kept[1:] == messages[len(messages) - len(kept) + 1 :]  # the latest turns, in order
    # One more turn would not have fitted.
    one_more = [SYSTEM, *messages[len(messages) - len(kept) - 1 :]]
    assert len(render(one_more, None)) > limit


def test_tool_definitions_go_whole_once_the_turns_are_gone(vocab: llama_cpp.Llama) -> None:
    render = Renderer(vocab)
    tools = [
        {
            "type": "function",
            "function": {
                "name": f"tool_{n}",
                "description": "Looks a thing up " * 5,
                "parameters": {
                    "type": "object",
                    "title": "Arguments",
                    "properties": {"query": {"type": "string", "title": "Query"}},
                    "required": ["query"],
                },
            },
        }
        for n in range(12)
    ]
    messages = conversation(3)
    everything = render(messages, tools)
    last_turn = [SYSTEM, messages[-1]]
    limit = len(render(last_turn, tools[:4])) + 5
    assert len(everything) > limit
    tokens = fit_chat(messages, tools, render, limit)
    assert len(tokens) <= limit
    assert render.messages == last_turn
    assert render.tools == tools[:4]
    # Each definition is one whole line of the instruction, its schema noise left out.
    prompt = render.text(render.messages, render.tools)
    lines = [line for line in prompt.splitlines() if line.startswith('{"name"')]
    assert [json.loads(line)["name"] for line in lines] == ["tool_0", "tool_1", "tool_2", "tool_3"]
    assert json.loads(lines[0])["parameters"] == {
        "type": "object",
        "properties": {"query": {"type": "string"}},
        "required": ["query"],
    }


def test_one_long_message_keeps_its_end(vocab: llama_cpp.Llama) -> None:
    render = Renderer(vocab)
    text = " ".join(f"word{n}" for n in range(3000)) + " the end"
    tokens = fit_chat([{"role": "user", "content": text}], None, render, 500)
    assert len(tokens) <= 500
    (kept,) = render.messages
    assert text.endswith(kept["content"]) and kept["content"].endswith("the end")
    assert len(kept["content"]) < len(text)


def test_system_messages_longer_than_the_context_are_refused(vocab: llama_cpp.Llama) -> None:
    render = Renderer(vocab)
    messages = [{"role": "system", "content": "hello " * 800}, {"role": "user", "content": "hi"}]
    with pytest.raises(PromptTooLong):
        fit_chat(messages, None, render, 300)


def test_the_answer_keeps_room_up_to_a_quarter_of_the_context() -> None:
    assert answer_room(4096, 100) == 100
    assert answer_room(4096, 1 << 30) == 1024
    assert answer_room(4096, 0) == 1


def test_the_default_context_is_the_models_own_within_the_budget(slow_gguf: Path) -> None:
    spec = ModelSpec(id=1, name="slow", path=str(slow_gguf), context_length=32768)
    per_token = kv_layout(str(slow_gguf)).bytes_per_token
    weights = slow_gguf.stat().st_size
    assert per_token > 0
    assert default_context(spec, 0, 4, 32) == 32768  # no budget: the model's own
    roomy = weights + per_token * 4 * 40000
    assert default_context(spec, roomy, 4, 32) == 32768
    tight = weights + per_token * 4 * 10000
    assert default_context(spec, tight, 4, 32) == 9984  # what fits, in steps of 256
    assert default_context(spec, weights + 1, 4, 32) == MIN_DEFAULT_CONTEXT  # never below
    assert default_context(replace(spec, context_length=2048), tight, 4, 32) == 2048
