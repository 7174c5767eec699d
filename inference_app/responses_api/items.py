"""Input and output items, and the chat messages they stand for.

A request's ``input`` is a string or a list of items; each item is brought to the one form the
API returns items in (an id, a ``status``, content as a list of parts), so the stored input
items, the output items and the chat messages are all made from one shape:

- ``message``: a turn of ``user``, ``system``, ``developer`` (content of ``input_text``
  parts) or ``assistant`` (``output_text`` parts). An item without ``type`` but with a
  ``role`` is one too (OpenAI's EasyInputMessage), and its content may be a string;
- ``function_call``: a call the model made (``call_id``, ``name``, ``arguments``), an
  assistant message's tool call in chat;
- ``function_call_output``: what the caller's code answered to a call (``call_id``,
  ``output``), a ``tool`` message in chat;
- ``reasoning``: the model's earlier thinking, which clients send back; it is kept with the
  input items but, as chat templates drop the thinking of earlier turns, gives no message.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from rest_framework import serializers

from inference_app.openai.bodies import ChatMessageIn, ToolCallIn
from inference_app.responses_api.bodies import (
    FunctionCallItem,
    InputImagePart,
    InputTextPart,
    Item,
    MessageItem,
    MessagePart,
    OutputTextPart,
    ReasoningItem,
)
from project.json_types import JsonObject, JsonValue

Role = Literal["user", "system", "developer", "assistant"]
INPUT_ROLES: tuple[Role, ...] = ("user", "system", "developer", "assistant")
ITEM_PREFIXES = {
    "message": "msg",
    "function_call": "fc",
    "function_call_output": "fco",
    "reasoning": "rs",
}
# Content parts a model on Herd reads: text, in the part type of the role's side.
TEXT_PARTS = ("input_text", "output_text")


def new_item_id(kind: str) -> str:
    return f"{ITEM_PREFIXES[kind]}_{secrets.token_hex(24)}"


def _fail(path: str, message: str) -> serializers.ValidationError:
    return serializers.ValidationError({path: [message]})


def output_text_part(text: str) -> OutputTextPart:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def normalize_input(data: Any) -> list[Item]:
    """The request's ``input`` as a list of items in the API's form; raises ValidationError
    (its path relative to ``input``) for anything else."""
    if isinstance(data, str):
        return [_message("user", [data])]
    if not isinstance(data, list):
        raise serializers.ValidationError("must be a string or a list of input items")
    if not data:
        raise serializers.ValidationError("must not be empty")
    return [_normalize_item(item, str(index)) for index, item in enumerate(data)]


def _normalize_item(item: Any, path: str) -> Item:
    if not isinstance(item, dict):
        raise _fail(path, "each input item must be an object")
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _normalize_message(item, path)
    if kind == "function_call":
        call: FunctionCallItem = {
            "type": "function_call",
            "id": _optional_string(item, "id", path) or new_item_id("function_call"),
            "call_id": _string(item, "call_id", path),
            "name": _string(item, "name", path),
            "arguments": _string(item, "arguments", path, blank=True),
            "status": "completed",
        }
        namespace = _optional_string(item, "namespace", path)
        if namespace:  # a call of a namespace's function, as the response named it
            call["namespace"] = namespace
        return call
    if kind == "function_call_output":
        return {
            "type": "function_call_output",
            "id": _optional_string(item, "id", path) or new_item_id("function_call_output"),
            "call_id": _string(item, "call_id", path),
            "output": _call_output(item.get("output"), f"{path}.output"),
            "status": "completed",
        }
    if kind == "reasoning":
        summary = item.get("summary", [])
        if not isinstance(summary, list):
            raise _fail(f"{path}.summary", "must be a list")
        # Kept as the client sent it (its content, its encrypted_content...).
        reasoning: ReasoningItem = {
            **item,
            "type": "reasoning",
            "id": _optional_string(item, "id", path) or new_item_id("reasoning"),
            "summary": summary,
        }
        return reasoning
    if kind is None:
        raise _fail(f"{path}.type", "an input item needs a type (or a role, for a message)")
    raise _fail(f"{path}.type", f"input item type {kind!r} is not supported")


def _normalize_message(item: JsonObject, path: str) -> MessageItem:
    role = next((r for r in INPUT_ROLES if r == item.get("role")), None)
    if role is None:
        raise _fail(f"{path}.role", f"must be one of {', '.join(INPUT_ROLES)}")
    content = item.get("content")
    parts: list[str | InputImagePart]
    if isinstance(content, str):
        parts = [content]
    elif isinstance(content, list):
        parts = [
            _content_part(part, f"{path}.content.{i}", images=role != "assistant")
            for i, part in enumerate(content)
        ]
    else:
        raise _fail(f"{path}.content", "must be a string or a list of content parts")
    message = _message(role, parts)
    given_id = item.get("id")
    if isinstance(given_id, str) and given_id:
        message["id"] = given_id
    return message


def _message(role: Role, parts: list[str | InputImagePart]) -> MessageItem:
    """A message item of ``role``: an assistant's parts are ``output_text``, the others'
    ``input_text`` (and their images ``input_image``)."""
    content: list[MessagePart] = [
        part
        if not isinstance(part, str)
        else output_text_part(part)
        if role == "assistant"
        else InputTextPart(type="input_text", text=part)
        for part in parts
    ]
    return {
        "type": "message",
        "id": new_item_id("message"),
        "role": role,
        "status": "completed",
        "content": content,
    }


def _content_part(part: JsonValue, path: str, *, images: bool) -> str | InputImagePart:
    """A message's part: its text, or (where ``images``: a user's or system's message) an
    ``input_image`` named by its ``image_url``."""
    if images and isinstance(part, dict) and part.get("type") == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            raise _fail(
                f"{path}.image_url",
                "an input_image needs a string 'image_url' (file_id is not supported)",
            )
        return InputImagePart(type="input_image", image_url=url)
    return _part_text(part, path)


def _part_text(part: JsonValue, path: str) -> str:
    """The text of a content part (a refusal's, for a ``refusal`` part)."""
    if not isinstance(part, dict):
        raise _fail(path, "each content part must be an object")
    kind = part.get("type")
    refusal = part.get("refusal")
    if kind == "refusal" and isinstance(refusal, str):
        return refusal
    if kind not in TEXT_PARTS:
        raise _fail(f"{path}.type", f"content part type {kind!r} is not supported by this model")
    text = part.get("text")
    if not isinstance(text, str):
        raise _fail(f"{path}.text", "a text part needs a string 'text'")
    return text


def _call_output(output: Any, path: str) -> str:
    """A call's output as the text the model reads: a string, or its text parts joined."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(_part_text(part, f"{path}.{i}") for i, part in enumerate(output))
    raise _fail(path, "must be a string or a list of content parts")


def _string(item: JsonObject, name: str, path: str, *, blank: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value and not blank):
        raise _fail(f"{path}.{name}", "must be a non-empty string")
    return value


def _optional_string(item: JsonObject, name: str, path: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{path}.{name}", "must be a string")
    return value or None


def message_text(item: MessageItem) -> str:
    return "".join(part["text"] for part in item["content"] if part["type"] != "input_image")


def _chat_content(item: MessageItem) -> str | list[JsonObject]:
    """A message item's content as a chat message holds it: its text, or with images, chat
    content parts in the item's order (``image_url`` parts the chat serializer reads)."""
    if not any(part["type"] == "input_image" for part in item["content"]):
        return message_text(item)
    return [
        {"type": "image_url", "image_url": {"url": part["image_url"]}}
        if part["type"] == "input_image"
        else {"type": "text", "text": part["text"]}
        for part in item["content"]
    ]


def known_call_ids(messages: Sequence[Mapping[str, object]]) -> set[str]:
    """The ids of the tool calls the assistant messages in ``messages`` made (chat
    messages, as stored: read with care)."""
    ids: set[str] = set()
    for message in messages:
        calls = message.get("tool_calls")
        for call in calls if isinstance(calls, list) else []:
            call_id = call.get("id") if isinstance(call, dict) else None
            if isinstance(call_id, str):
                ids.add(call_id)
    return ids


def to_messages(
    items: list[Item],
    earlier: Sequence[Mapping[str, object]] | None = None,
    origins: list[int] | None = None,
) -> list[ChatMessageIn]:
    """Chat messages for ``items`` (in the API's form), continuing ``earlier`` messages: calls
    in a row join one assistant message (with the text just before them), outputs become
    ``tool`` messages. An output whose ``call_id`` names no call made in ``earlier`` or
    ``items`` raises ValidationError, as OpenAI answers. ``origins``, when given, gets the
    index of the item each message starts from, so that an error about a message can name
    the item."""
    calls = known_call_ids(earlier or [])
    messages: list[ChatMessageIn] = []
    for index, item in enumerate(items):
        if item["type"] == "message":
            messages.append({"role": item["role"], "content": _chat_content(item)})
        elif item["type"] == "function_call":
            calls.add(item["call_id"])
            call: ToolCallIn = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"] or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif item["type"] == "function_call_output":
            if item["call_id"] not in calls:
                raise _fail(
                    f"{index}.call_id",
                    f"no function call found with call_id {item['call_id']!r}",
                )
            messages.append(
                {"role": "tool", "tool_call_id": item["call_id"], "content": item["output"]}
            )
        if origins is not None:
            origins.extend([index] * (len(messages) - len(origins)))
    return messages
