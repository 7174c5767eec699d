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
from dataclasses import replace
from typing import TypeGuard

from inference_app.anthropic.bodies import (
    ContentBlock,
    CountTokensRequest,
    ImageBlock,
    ImageSource,
    MessageIn,
    MessagesRequest,
    TextBlock,
    ThinkingIn,
    ToolChoiceIn,
    ToolIn,
)
from inference_app.openai.bodies import (
    ChatMessageIn,
    ChatRequest,
    FunctionIn,
    ToolCallIn,
    ToolChoice,
)
from inference_app.openai.bodies import ToolIn as ChatToolIn
from inference_app.openai.serializers import ChatCompletionSerializer
from models_app.parameters import ModelOptions
from project.errors import ValidationFailed
from project.json_types import JsonObject
from workers.broker.wire import GenerationPayload


def chat_request(data: CountTokensRequest) -> ChatCompletionSerializer:
    """The chat serializer over the request ``data`` (a ``CountTokensSerializer``'s or a
    ``MessagesSerializer``'s validated data), validated; raises ValidationFailed."""
    chat = ChatCompletionSerializer(data=chat_body(data))
    if not chat.is_valid():
        raise ValidationFailed(chat.errors)
    return chat


def generation_payload(
    chat: ChatCompletionSerializer,
    defaults: ModelOptions,
    *,
    stop_sequences: list[str] | None = None,
    thinking: ThinkingIn | None = None,
) -> GenerationPayload:
    """The payload of ``chat`` with the model's ``defaults``. The stop strings are set here:
    OpenAI's ``stop`` takes at most four, Anthropic's ``stop_sequences`` more."""
    payload = chat.to_payload(defaults)
    if stop_sequences:
        payload = replace(payload, options={**payload.options, "stop": list(stop_sequences)})
    if thinking:
        asked = thinking["type"] != "disabled"
        variables = {**(payload.template_variables or {}), "enable_thinking": asked}
        payload = replace(payload, template_variables=variables)
    return payload


def chat_body(data: CountTokensRequest | MessagesRequest) -> ChatRequest:
    """The chat request of a count_tokens or a messages body (only the latter samples)."""
    body: ChatRequest = {
        "model": data["model"],
        "messages": chat_messages(data.get("system"), data["messages"]),
    }
    if _is_messages(data):
        body["max_tokens"] = data["max_tokens"]
        if data.get("temperature") is not None:
            body["temperature"] = data.get("temperature")
        if data.get("top_p") is not None:
            body["top_p"] = data.get("top_p")
        if data.get("top_k") is not None:
            body["top_k"] = data.get("top_k")
        body["stream"] = data["stream"]
        user = (data.get("metadata") or {}).get("user_id")
        if user:
            body["user"] = user
    tools = data.get("tools")
    if tools:
        body["tools"] = [chat_tool(tool) for tool in tools]
    choice = data.get("tool_choice")
    if choice is not None:
        body["tool_choice"] = chat_tool_choice(choice)
        if choice["disable_parallel_tool_use"]:
            body["parallel_tool_calls"] = False
    return body


def _is_messages(data: CountTokensRequest | MessagesRequest) -> TypeGuard[MessagesRequest]:
    """Whether ``data`` is a ``/v1/messages`` body (validated, it has ``max_tokens``)."""
    return "max_tokens" in data


def chat_tool(tool: ToolIn) -> ChatToolIn:
    function: FunctionIn = {"name": tool["name"], "parameters": tool["input_schema"]}
    if "description" in tool:
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def chat_tool_choice(choice: ToolChoiceIn) -> ToolChoice:
    kind = choice["type"]
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return kind  # "auto" and "none" are OpenAI's words too


def chat_messages(system: str | None, messages: list[MessageIn]) -> list[ChatMessageIn]:
    out: list[ChatMessageIn] = []
    if system:
        out.append({"role": "system", "content": system})
    tool_names: dict[str, str] = {}
    for role, blocks in merged_turns(messages):
        if role == "assistant":
            out.append(_assistant_message(blocks, tool_names))
        elif role == "system":
            texts = [b["text"] for b in blocks if b["type"] == "text"]
            out.append({"role": "system", "content": _joined(texts)})
        else:
            out.extend(_user_messages(blocks, tool_names))
    return out


def merged_turns(messages: list[MessageIn]) -> list[tuple[str, list[ContentBlock]]]:
    """The messages as turns: consecutive messages of one role make one."""
    turns: list[tuple[str, list[ContentBlock]]] = []
    for message in messages:
        if turns and turns[-1][0] == message["role"]:
            turns[-1][1].extend(message["content"])
        else:
            turns.append((message["role"], list(message["content"])))
    return turns


def _assistant_message(blocks: list[ContentBlock], tool_names: dict[str, str]) -> ChatMessageIn:
    text = "".join(b["text"] for b in blocks if b["type"] == "text")
    calls: list[ToolCallIn] = []
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


def _user_messages(blocks: list[ContentBlock], tool_names: dict[str, str]) -> list[ChatMessageIn]:
    """A user turn: its text, and a ``tool`` message for each result, in their order."""
    out: list[ChatMessageIn] = []
    text: list[TextBlock | ImageBlock] = []  # text blocks, and images among them
    for block in blocks:
        if block["type"] == "text" or block["type"] == "image":
            text.append(block)
            continue
        if block["type"] != "tool_result":
            continue  # a user's tool_use: the serializer refuses it
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


def _user_content(blocks: list[TextBlock | ImageBlock]) -> str | list[JsonObject]:
    """A user's text blocks as one text; with images among them, chat content parts in their
    order (each image an ``image_url`` part, its base64 source as a data: URL)."""
    if not any(block["type"] == "image" for block in blocks):
        return _joined([block["text"] for block in blocks if block["type"] == "text"])
    parts: list[JsonObject] = []
    for block in blocks:
        if block["type"] == "image":
            parts.append({"type": "image_url", "image_url": {"url": _image_url(block["source"])}})
        else:
            parts.append({"type": "text", "text": block["text"]})
    return parts


def _image_url(source: ImageSource) -> str:
    if source["type"] == "url":
        return source.get("url", "")
    return f"data:{source.get('media_type', '')};base64,{source.get('data', '')}"


def _joined(texts: list[str]) -> str:
    # A user's text blocks are passages of their own (a client's context, then the question).
    return "\n\n".join(texts)
