"""The Messages API's request bodies as ``inference_app.anthropic.serializers`` validates
them, and the response bodies ``inference_app.anthropic.format`` writes."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from project.json_types import JsonObject

# Requests (validated).


class TextBlock(TypedDict):
    type: Literal["text"]
    text: str
    cache_control: NotRequired[JsonObject | None]
    citations: NotRequired[list[JsonObject] | None]


class ToolUseBlock(TypedDict):
    """A call the model made in an earlier turn."""

    type: Literal["tool_use"]
    id: str
    name: str
    input: JsonObject
    cache_control: NotRequired[JsonObject | None]


class ToolResultBlock(TypedDict):
    """What a call returned: its content's text."""

    type: Literal["tool_result"]
    tool_use_id: str
    content: str
    is_error: bool
    cache_control: NotRequired[JsonObject | None]


class ImageSource(TypedDict):
    """Where an image block's image is: base64 ``data`` of a ``media_type``, or a ``url``."""

    type: Literal["base64", "url"]
    media_type: NotRequired[str]
    data: NotRequired[str]
    url: NotRequired[str]


class ImageBlock(TypedDict):
    """An image in a user's message."""

    type: Literal["image"]
    source: ImageSource
    cache_control: NotRequired[JsonObject | None]


ContentBlock = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock


class MessageIn(TypedDict):
    role: Literal["user", "assistant", "system"]
    content: list[ContentBlock]


class ToolIn(TypedDict):
    name: str
    input_schema: JsonObject
    type: NotRequired[Literal["custom"]]
    description: NotRequired[str]
    cache_control: NotRequired[JsonObject | None]


class ToolChoiceIn(TypedDict):
    type: Literal["auto", "any", "tool", "none"]
    disable_parallel_tool_use: bool
    name: NotRequired[str]


class MetadataIn(TypedDict, total=False):
    user_id: str | None


class ThinkingIn(TypedDict):
    type: Literal["enabled", "adaptive", "disabled"]
    budget_tokens: NotRequired[int]


class CountTokensRequest(TypedDict):
    """The body of ``/v1/messages/count_tokens``: what a prompt is made of."""

    model: str
    messages: list[MessageIn]
    system: NotRequired[str | None]
    tools: NotRequired[list[ToolIn] | None]
    tool_choice: NotRequired[ToolChoiceIn | None]


class MessagesRequest(CountTokensRequest):
    """The body of ``/v1/messages``."""

    max_tokens: int
    stream: bool
    thinking: NotRequired[ThinkingIn | None]
    stop_sequences: NotRequired[list[str] | None]
    temperature: NotRequired[float | None]
    top_p: NotRequired[float | None]
    top_k: NotRequired[int | None]
    metadata: NotRequired[MetadataIn | None]


# Responses.


class TextOut(TypedDict):
    type: Literal["text"]
    text: str


class ToolUseOut(TypedDict):
    type: Literal["tool_use"]
    id: str
    name: str | None  # as the worker's ToolDelta names it: always, for a call's first
    input: JsonObject


class ThinkingOut(TypedDict):
    type: Literal["thinking"]
    thinking: str
    signature: str


ContentOut = TextOut | ToolUseOut | ThinkingOut


class UsageOut(TypedDict):
    input_tokens: int
    output_tokens: int


class MessageOut(TypedDict):
    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentOut]
    stop_reason: str | None
    stop_sequence: str | None
    usage: UsageOut


class TextDelta(TypedDict):
    type: Literal["text_delta"]
    text: str


class ThinkingDelta(TypedDict):
    type: Literal["thinking_delta"]
    thinking: str


class InputJsonDelta(TypedDict):
    type: Literal["input_json_delta"]
    partial_json: str


BlockDelta = TextDelta | ThinkingDelta | InputJsonDelta
