"""A validated Messages request as the chat request ``/v1/chat/completions`` takes, so that the
OpenAI chat serializer builds its ``GenerationPayload`` (sampling options, the model's
defaults, tools and forced calls) as it builds every chat's.

Messages: consecutive messages of one role are one turn, as Anthropic merges them; ``system``
is the first message, and a system message among ``messages`` one at its place; an
assistant's ``tool_use`` blocks are its ``tool_calls``; a user's
``tool_result`` blocks are ``tool`` messages, in their place among its text. ``tool_choice``
``any`` and ``tool`` are the forced (grammar-constrained) choices, ``required`` and a named
function.
"""

from __future__ import annotations

import json
from typing import Any

from inference_app.openai.serializers import ChatCompletionSerializer
from project.edge.errors import ValidationFailed
from workers.broker.wire import GenerationPayload


def chat_request(data: dict[str, Any]) -> ChatCompletionSerializer:
    """The chat serializer over the request ``data`` (a ``CountTokensSerializer``'s or a
    ``MessagesSerializer``'s validated data), validated; raises ValidationFailed."""
    chat = ChatCompletionSerializer(data=chat_body(data))
    if not chat.is_valid():
        raise ValidationFailed(chat.errors)
    return chat


def generation_payload(
    chat: ChatCompletionSerializer, data: dict[str, Any], defaults: dict[str, Any]
) -> GenerationPayload:
    """The payload of ``chat`` with the model's ``defaults``. The stop strings are set here:
    OpenAI's ``stop`` takes at most four, Anthropic's ``stop_sequences`` more."""
    payload = chat.to_payload(defaults)
    if data.get("stop_sequences"):
        payload.options["stop"] = list(data["stop_sequences"])
    thinking = data.get("thinking")
    if thinking:
        asked = thinking["type"] != "disabled"
        payload.template_variables = {
            **(payload.template_variables or {}),
            "enable_thinking": asked,
        }
    return payload


def chat_body(data: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": data["model"],
        "messages": chat_messages(data.get("system"), data["messages"]),
    }
    for name in ("max_tokens", "temperature", "top_p", "top_k", "stream"):
        if data.get(name) is not None:
            body[name] = data[name]
    user = (data.get("metadata") or {}).get("user_id")
    if user:
        body["user"] = user
    if data.get("tools"):
        body["tools"] = [chat_tool(tool) for tool in data["tools"]]
    choice = data.get("tool_choice")
    if choice is not None:
        body["tool_choice"] = chat_tool_choice(choice)
        if choice["disable_parallel_tool_use"]:
            body["parallel_tool_calls"] = False
    return body


def chat_tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = {"name": tool["name"], "parameters": tool["input_schema"]}
    if "description" in tool:
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def chat_tool_choice(choice: dict[str, Any]) -> Any:
    kind = choice["type"]
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice["name"]}}
    return kind  # "auto" and "none" are OpenAI's words too


def chat_messages(system: str | None, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if system:
        out.append({"role": "system", "content": system})
    tool_names: dict[str, str] = {}
    for role, blocks in merged_turns(messages):
        if role == "assistant":
            out.append(_assistant_message(blocks, tool_names))
        elif role == "system":
            out.append({"role": "system", "content": _joined([b["text"] for b in blocks])})
        else:
            out.extend(_user_messages(blocks, tool_names))
    return out


def merged_turns(messages: list[dict[str, Any]]) -> list[tuple[str, list[dict[str, Any]]]]:
    """The messages as turns: consecutive messages of one role make one."""
    turns: list[tuple[str, list[dict[str, Any]]]] = []
    for message in messages:
        if turns and turns[-1][0] == message["role"]:
            turns[-1][1].extend(message["content"])
        else:
            turns.append((message["role"], list(message["content"])))
    return turns


def _assistant_message(blocks: list[dict[str, Any]], tool_names: dict[str, str]) -> dict[str, Any]:
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls = []
    for block in blocks:
        if block["type"] == "tool_use":
            tool_names[block["id"]] = block["name"]
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": json.dumps(block["input"])},
                }
            )
    if not calls:
        return {"role": "assistant", "content": text}
    return {"role": "assistant", "content": text or None, "tool_calls": calls}


def _user_messages(
    blocks: list[dict[str, Any]], tool_names: dict[str, str]
) -> list[dict[str, Any]]:
    """A user turn: its text, and a ``tool`` message for each result, in their order."""
    out: list[dict[str, Any]] = []
    text: list[dict[str, Any]] = []  # text blocks, and images among them
    for block in blocks:
        if block["type"] in ("text", "image"):
            text.append(block)
            continue
        if text:
            out.append({"role": "user", "content": _user_content(text)})
            text = []
        content = block["content"]
        if block["is_error"]:
            # A chat template has no flag for a failed call: the model reads it in the text.
            content = f"Error: {content}"
        out.append(
            {
                "role": "tool",
                "tool_call_id": block["tool_use_id"],
                "name": tool_names[block["tool_use_id"]],
                "content": content,
            }
        )
    if text or not out:
        out.append({"role": "user", "content": _user_content(text)})
    return out


def _user_content(blocks: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """A user's text blocks as one text; with images among them, chat content parts in their
    order (each image an ``image_url`` part, its base64 source as a data: URL)."""
    if not any(block["type"] == "image" for block in blocks):
        return _joined([block["text"] for block in blocks])
    return [
        {"type": "image_url", "image_url": {"url": _image_url(block["source"])}}
        if block["type"] == "image"
        else {"type": "text", "text": block["text"]}
        for block in blocks
    ]


def _image_url(source: dict[str, Any]) -> str:
    if source["type"] == "url":
        return str(source["url"])
    return f"data:{source['media_type']};base64,{source['data']}"


def _joined(texts: list[str]) -> str:
    # A user's text blocks are passages of their own (a client's context, then the question).
    return "\n\n".join(texts)
