"""Cutting a prompt that does not fit the context down to one that does, as Ollama does.

A chat keeps its system messages and its latest turns: the oldest turns go first, whole (a
turn is a user message and what answers it, so what is kept still starts with a user
message). When the system messages, the last turn and the tools alone are too long, the tool
definitions go, whole, from the last one; then the start of the last message's text, which is
how a generate prompt (one user turn) keeps its end.

``fit_chat`` takes a ``render(messages, tools)`` that gives the tokens of the prompt for those
messages and tools, so it knows nothing of templates or tokenizers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.engine.prompts import message_text

Render = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], list[int]]

SYSTEM_ROLES = ("system", "developer")


class PromptTooLong(ValueError):
    """Nothing that may be dropped makes the prompt fit."""


def answer_room(n_ctx: int, max_tokens: int) -> int:
    """Tokens of the context left for the answer when a prompt is cut to fit: what it may
    write, but at most a quarter of the context, so that a long answer allowed still leaves a
    prompt worth having."""
    return max(1, min(max_tokens, n_ctx // 4))


def fit_chat(
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    render: Render,
    limit: int,
) -> list[int]:
    """The tokens of the longest prompt of at most ``limit`` tokens made from ``messages``
    and ``tools`` as the module docstring says; PromptTooLong when none is."""
    tokens = render(messages, tools)
    if len(tokens) <= limit:
        return tokens
    turns = _turns(messages)

    def kept(dropped: int) -> list[dict[str, Any]]:
        gone = {i for turn in turns[:dropped] for i in turn}
        return [m for i, m in enumerate(messages) if i not in gone]

    # The fewest oldest turns to drop (more dropped never makes a prompt longer).
    low, high = 1, len(turns) - 1
    if high >= low and len(render(kept(high), tools)) <= limit:
        while low < high:
            middle = (low + high) // 2
            if len(render(kept(middle), tools)) <= limit:
                high = middle
            else:
                low = middle + 1
        return render(kept(low), tools)
    last_turn = kept(max(0, len(turns) - 1))
    offered = list(tools or [])
    while offered:
        offered.pop()
        tokens = render(last_turn, offered or None)
        if len(tokens) <= limit:
            return tokens
    return _cut_last_message(last_turn, render, limit)


def _turns(messages: list[dict[str, Any]]) -> list[list[int]]:
    """The indexes of the messages that are not system messages, in turns that each start at
    a user message (those before the first user message make a turn of their own)."""
    turns: list[list[int]] = []
    for index, message in enumerate(messages):
        if message["role"] in SYSTEM_ROLES:
            continue
        if message["role"] == "user" or not turns:
            turns.append([])
        turns[-1].append(index)
    return turns


def _cut_last_message(messages: list[dict[str, Any]], render: Render, limit: int) -> list[int]:
    """Keep the end of the last message's text: the shortest cut from its start that fits."""
    last = messages[-1]
    text = message_text(last.get("content"))

    def with_text_from(start: int) -> list[int]:
        return render([*messages[:-1], {**last, "content": text[start:]}], None)

    if last["role"] in SYSTEM_ROLES or len(with_text_from(len(text))) > limit:
        raise PromptTooLong("the system messages alone are longer than the context")
    low, high = 0, len(text)
    while low < high:
        middle = (low + high) // 2
        if len(with_text_from(middle)) <= limit:
            high = middle
        else:
            low = middle + 1
    return with_text_from(low)


def keep_end(tokens: list[int], limit: int, keep_first: int = 0) -> list[int]:
    """A raw prompt cut to ``limit`` tokens: its first ``keep_first`` (the BOS) and its end."""
    if len(tokens) <= limit:
        return tokens
    return tokens[:keep_first] + tokens[len(tokens) - (limit - keep_first) :]
