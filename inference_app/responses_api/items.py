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
from typing import Any

from rest_framework import serializers

INPUT_ROLES = ("user", "system", "developer", "assistant")
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


def output_text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def normalize_input(data: Any) -> list[dict[str, Any]]:
    """The request's ``input`` as a list of items in the API's form; raises ValidationError
    (its path relative to ``input``) for anything else."""
    if isinstance(data, str):
        return [_message("user", [{"type": "input_text", "text": data}])]
    if not isinstance(data, list):
        raise serializers.ValidationError("must be a string or a list of input items")
    if not data:
        raise serializers.ValidationError("must not be empty")
    return [_normalize_item(item, str(index)) for index, item in enumerate(data)]


def _normalize_item(item: Any, path: str) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise _fail(path, "each input item must be an object")
    kind = item.get("type", "message" if "role" in item else None)
    if kind == "message":
        return _normalize_message(item, path)
    if kind == "function_call":
        call = {
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
        return {
            **item,
            "id": _optional_string(item, "id", path) or new_item_id("reasoning"),
            "summary": summary,
        }
    if kind is None:
        raise _fail(f"{path}.type", "an input item needs a type (or a role, for a message)")
    raise _fail(f"{path}.type", f"input item type {kind!r} is not supported")


def _normalize_message(item: dict[str, Any], path: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in INPUT_ROLES:
        raise _fail(f"{path}.role", f"must be one of {', '.join(INPUT_ROLES)}")
    content = item.get("content")
    part_type = "output_text" if role == "assistant" else "input_text"
    if isinstance(content, str):
        parts = [{"type": part_type, "text": content}]
    elif isinstance(content, list):
        parts = [
            _content_part(part, f"{path}.content.{i}", part_type) for i, part in enumerate(content)
        ]
    else:
        raise _fail(f"{path}.content", "must be a string or a list of content parts")
    message = _message(role, parts)
    if isinstance(item.get("id"), str) and item["id"]:
        message["id"] = item["id"]
    return message


def _message(role: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    if role == "assistant":
        parts = [output_text_part(p["text"]) for p in parts]
    return {
        "type": "message",
        "id": new_item_id("message"),
        "role": role,
        "status": "completed",
        "content": parts,
    }


def _content_part(part: Any, path: str, part_type: str) -> dict[str, Any]:
    """A message's part: text, or (in a user's or system's message) an ``input_image`` named
    by its ``image_url`` (a data: URL, or http(s) where the server fetches images)."""
    if isinstance(part, dict) and part.get("type") == "input_image" and part_type == "input_text":
        if not isinstance(part.get("image_url"), str):
            raise _fail(
                f"{path}.image_url",
                "an input_image needs a string 'image_url' (file_id is not supported)",
            )
        return {"type": "input_image", "image_url": part["image_url"]}
    return _text_part(part, path, part_type)


def _text_part(part: Any, path: str, part_type: str) -> dict[str, Any]:
    if not isinstance(part, dict):
        raise _fail(path, "each content part must be an object")
    kind = part.get("type")
    if kind == "refusal" and isinstance(part.get("refusal"), str):
        return {"type": part_type, "text": part["refusal"]}
    if kind not in TEXT_PARTS:
        raise _fail(f"{path}.type", f"content part type {kind!r} is not supported by this model")
    if not isinstance(part.get("text"), str):
        raise _fail(f"{path}.text", "a text part needs a string 'text'")
    return {"type": part_type, "text": part["text"]}


def _call_output(output: Any, path: str) -> str:
    """A call's output as the text the model reads: a string, or its text parts joined."""
    if isinstance(output, str):
        return output
    if isinstance(output, list):
        return "".join(
            _text_part(part, f"{path}.{i}", "input_text")["text"] for i, part in enumerate(output)
        )
    raise _fail(path, "must be a string or a list of content parts")


def _string(item: dict[str, Any], name: str, path: str, *, blank: bool = False) -> str:
    value = item.get(name)
    if not isinstance(value, str) or (not value and not blank):
        raise _fail(f"{path}.{name}", "must be a non-empty string")
    return value


def _optional_string(item: dict[str, Any], name: str, path: str) -> str | None:
    value = item.get(name)
    if value is not None and not isinstance(value, str):
        raise _fail(f"{path}.{name}", "must be a string")
    return value or None


def message_text(item: dict[str, Any]) -> str:
    return "".join(part["text"] for part in item["content"] if "text" in part)


def _chat_content(item: dict[str, Any]) -> str | list[dict[str, Any]]:
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


def known_call_ids(messages: list[dict[str, Any]]) -> set[str]:
    """The ids of the tool calls the assistant messages in ``messages`` made."""
    return {
        call["id"]
        for message in messages
        for call in message.get("tool_calls") or []
        if isinstance(call.get("id"), str)
    }


def to_messages(
    items: list[dict[str, Any]],
    earlier: list[dict[str, Any]] | None = None,
    origins: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Chat messages for ``items`` (in the API's form), continuing ``earlier`` messages: calls
    in a row join one assistant message (with the text just before them), outputs become
    ``tool`` messages. An output whose ``call_id`` names no call made in ``earlier`` or
    ``items`` raises ValidationError, as OpenAI answers. ``origins``, when given, gets the
    index of the item each message starts from, so that an error about a message can name
    the item."""
    calls = known_call_ids(earlier or [])
    messages: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        kind = item["type"]
        if kind == "message":
            messages.append({"role": item["role"], "content": _chat_content(item)})
        elif kind == "function_call":
            calls.add(item["call_id"])
            call = {
                "id": item["call_id"],
                "type": "function",
                "function": {"name": item["name"], "arguments": item["arguments"] or "{}"},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
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
