"""Request bodies of ``/v1/messages`` and ``/v1/messages/count_tokens``, validated with DRF
serializers as Anthropic validates them.

A message's content is a string or a list of content blocks; each block is checked by the
serializer of its ``type`` (``BLOCKS``), and comes out as a dict with that type. Blocks that
an earlier answer of the model carried and that Anthropic leaves out of a prompt (``thinking``)
are dropped; block types Herd's models cannot read (documents, server tools) and unknown
types are a 400. An ``image`` block (a base64 or URL source) is read by the chat serializer,
and refused there for a model without a vision projector. ``translation`` turns the
validated body into a chat request.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from inference_app.anthropic.bodies import (
    ContentBlock,
    CountTokensRequest,
    MessageIn,
    MessagesRequest,
    ToolChoiceIn,
)
from inference_app.input_checks import (
    MAX_C_INT,
    MAX_MODEL_NAME,
    StrictCharField,
    UnicodeBody,
    check_json_schema,
)
from project.json_types import JsonObject

# "system": Claude Code sends system text mid-conversation too (a beta Anthropic accepts);
# it stays at its place in the chat, where the model's template takes it (the worker folds it
# into a user turn where not).
ROLES = ("user", "assistant", "system")
# Earlier turns' reasoning: Anthropic leaves it out of the prompt, and so does Herd.
DROPPED_BLOCKS = ("thinking", "redacted_thinking")
# Anthropic's, but nothing a text model here can read or run.
UNSUPPORTED_BLOCKS = (
    "document",
    "search_result",
    "server_tool_use",
    "web_search_tool_result",
    "code_execution_tool_result",
    "mcp_tool_use",
    "mcp_tool_result",
    "container_upload",
)
# How many stop strings one request may give: each is looked for after every token.
MAX_STOP_SEQUENCES = 16


def _text() -> StrictCharField:
    """A block's text, kept as written (DRF trims strings by default)."""
    return StrictCharField(allow_blank=True, trim_whitespace=False)


class CacheControlSerializer(serializers.Serializer):
    """Accepted where Anthropic accepts it; Herd's engines reuse a cached prompt prefix on
    their own, so it asks nothing more of them."""

    type = serializers.ChoiceField(choices=("ephemeral",))
    ttl = StrictCharField(required=False)


class TextBlockSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("text",))
    text = _text()
    cache_control = CacheControlSerializer(required=False, allow_null=True)
    citations = serializers.ListField(required=False, allow_null=True)


class ToolResultContentField(serializers.Field):
    """A ``tool_result``'s content: a string, or a list of text blocks. Gives the text."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if not isinstance(data, list):
            raise serializers.ValidationError("must be a string or a list of text blocks")
        texts = []
        for index, block in enumerate(data):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind != "text":
                raise serializers.ValidationError(
                    {str(index): [f"a tool result's content block must be text, not {kind!r}"]}
                )
            text = TextBlockSerializer(data=block)
            if not text.is_valid():
                raise serializers.ValidationError({str(index): text.errors})
            texts.append(text.validated_data["text"])
        return "\n".join(texts)

    def to_representation(self, value: Any) -> Any:
        return value


class ToolUseBlockSerializer(serializers.Serializer):
    """A call the model made in an earlier turn (an assistant message's)."""

    type = serializers.ChoiceField(choices=("tool_use",))
    id = StrictCharField(max_length=128)
    name = StrictCharField(max_length=128)
    input = serializers.DictField()
    cache_control = CacheControlSerializer(required=False, allow_null=True)


class ToolResultBlockSerializer(serializers.Serializer):
    """What a call of an earlier ``tool_use`` returned (a user message's)."""

    type = serializers.ChoiceField(choices=("tool_result",))
    tool_use_id = StrictCharField(max_length=128)
    content = ToolResultContentField(required=False, default="")
    is_error = serializers.BooleanField(required=False, default=False)
    cache_control = CacheControlSerializer(required=False, allow_null=True)


class ImageSourceSerializer(serializers.Serializer):
    """Where an image block's image is: base64 ``data`` of a ``media_type``, or a ``url``.
    Its fields are named as Anthropic names them, and ``data`` is a serializer's own attribute:
    they are declared in ``get_fields``."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "type": serializers.ChoiceField(choices=("base64", "url")),
            "media_type": serializers.ChoiceField(
                choices=("image/jpeg", "image/png", "image/gif", "image/webp"), required=False
            ),
            "data": StrictCharField(required=False),
            "url": StrictCharField(required=False),
        }

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        needed = ("media_type", "data") if attrs["type"] == "base64" else ("url",)
        for name in needed:
            if not attrs.get(name):
                raise serializers.ValidationError({name: ["This field is required."]})
        return attrs


class ImageBlockSerializer(serializers.Serializer):
    """An image in a user's message (``source`` is a field's own attribute: see above)."""

    def get_fields(self) -> dict[str, serializers.Field]:
        return {
            "type": serializers.ChoiceField(choices=("image",)),
            "source": ImageSourceSerializer(),
            "cache_control": CacheControlSerializer(required=False, allow_null=True),
        }


BLOCKS: dict[str, type[serializers.Serializer]] = {
    "text": TextBlockSerializer,
    "image": ImageBlockSerializer,
    "tool_use": ToolUseBlockSerializer,
    "tool_result": ToolResultBlockSerializer,
}


class ContentField(serializers.Field):
    """A message's content: a string (one text block), or a list of content blocks. Gives
    the list of blocks, each as its serializer validated it."""

    def to_internal_value(self, data: Any) -> list[ContentBlock]:
        if isinstance(data, str):
            return [{"type": "text", "text": data}]
        if not isinstance(data, list):
            raise serializers.ValidationError("must be a string or a list of content blocks")
        blocks: list[ContentBlock] = []
        for index, block in enumerate(data):
            blocks.extend(_block(index, block))
        return blocks

    def to_representation(self, value: Any) -> Any:
        return value


def _block(index: int, block: Any) -> list[ContentBlock]:
    """``block`` validated (none, for a dropped one); raises ValidationError at ``index``."""
    kind = block.get("type") if isinstance(block, dict) else None
    if not isinstance(kind, str):
        raise serializers.ValidationError(
            {str(index): ["a content block must be an object with a string 'type'"]}
        )
    if kind in DROPPED_BLOCKS:
        return []
    if kind in UNSUPPORTED_BLOCKS:
        raise serializers.ValidationError(
            {str(index): {"type": [f"content block type '{kind}' is not supported by this server"]}}
        )
    serializer_class = BLOCKS.get(kind)
    if serializer_class is None:
        raise serializers.ValidationError(
            {str(index): {"type": [f"unknown content block type '{kind}'"]}}
        )
    serializer = serializer_class(data=block)
    if not serializer.is_valid():
        raise serializers.ValidationError({str(index): serializer.errors})
    validated: ContentBlock = serializer.validated_data
    return [validated]


class SystemField(serializers.Field):
    """``system``: a string, or a list of text blocks. Gives the text, the blocks' texts one
    after the other."""

    def to_internal_value(self, data: Any) -> str:
        if isinstance(data, str):
            return data
        if isinstance(data, list):
            for index, block in enumerate(data):
                if isinstance(block, dict) and block.get("type") not in (None, "text"):
                    message = "a system prompt holds text blocks only"
                    raise serializers.ValidationError({str(index): {"type": [message]}})
        blocks = ContentField().to_internal_value(data)
        texts = [b["text"] for b in blocks if b["type"] == "text"]
        if len(texts) != len(blocks):
            raise serializers.ValidationError("must be a string or a list of text blocks")
        return "\n\n".join(texts)

    def to_representation(self, value: Any) -> Any:
        return value


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = ContentField()

    def validate(self, attrs: MessageIn) -> MessageIn:
        # Calls are the model's, their results the user's; a system message is text.
        role = attrs["role"]
        if role == "system":
            for index, block in enumerate(attrs["content"]):
                if block["type"] != "text":
                    message = f"a system message holds text blocks only, not {block['type']}"
                    raise serializers.ValidationError({"content": {str(index): [message]}})
            return attrs
        misplaced = "tool_use" if role == "user" else "tool_result"
        for index, block in enumerate(attrs["content"]):
            if block["type"] == misplaced:
                message = f"a {role} message cannot hold {misplaced} blocks"
                raise serializers.ValidationError({"content": {str(index): [message]}})
        return attrs


class ToolSerializer(serializers.Serializer):
    """A tool the client runs (Anthropic's ``custom`` tools); its server tools (web search,
    code execution and the like) are Anthropic's own, and a 400 here."""

    type = serializers.ChoiceField(choices=("custom",), required=False)
    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
    description = StrictCharField(required=False, allow_blank=True)
    input_schema = serializers.DictField()
    cache_control = CacheControlSerializer(required=False, allow_null=True)

    def validate_input_schema(self, value: JsonObject) -> JsonObject:
        return check_json_schema(value)


class ToolChoiceSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("auto", "any", "tool", "none"))
    name = StrictCharField(required=False)
    disable_parallel_tool_use = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: ToolChoiceIn) -> ToolChoiceIn:
        if attrs["type"] == "tool" and not attrs.get("name"):
            raise serializers.ValidationError({"name": ["required when type is 'tool'"]})
        return attrs


class MetadataSerializer(serializers.Serializer):
    user_id = StrictCharField(required=False, allow_null=True, allow_blank=True, max_length=256)


class CountTokensSerializer(UnicodeBody):
    """What a prompt is made of: the body of ``/v1/messages/count_tokens``, and of
    ``/v1/messages`` but for the generation's own fields (``MessagesSerializer``)."""

    model = StrictCharField(max_length=MAX_MODEL_NAME)
    system = SystemField(required=False, allow_null=True)
    messages = MessageSerializer(many=True, allow_empty=False)
    tools = ToolSerializer(many=True, required=False, allow_null=True)
    tool_choice = ToolChoiceSerializer(required=False, allow_null=True)

    def validate(self, attrs: CountTokensRequest) -> CountTokensRequest:
        self._check_tool_results(attrs["messages"])
        choice = attrs.get("tool_choice")
        names = {t["name"] for t in attrs.get("tools") or []}
        if choice is not None and choice["type"] in ("any", "tool") and not names:
            raise serializers.ValidationError({"tool_choice": [f"'{choice['type']}' needs tools"]})
        if choice is not None and choice["type"] == "tool" and choice.get("name") not in names:
            raise serializers.ValidationError(
                {"tool_choice": [f"names '{choice.get('name')}', which is not among the tools"]}
            )
        return attrs

    @property
    def body(self) -> CountTokensRequest:
        """The validated body, typed."""
        validated: CountTokensRequest = self.validated_data
        return validated

    @staticmethod
    def _check_tool_results(messages: list[MessageIn]) -> None:
        """Each ``tool_result`` answers a ``tool_use`` of an earlier message."""
        called: set[str] = set()
        for m_index, message in enumerate(messages):
            for b_index, block in enumerate(message["content"]):
                if block["type"] == "tool_use":
                    called.add(block["id"])
                elif block["type"] == "tool_result" and block["tool_use_id"] not in called:
                    raise serializers.ValidationError(
                        {
                            "messages": {
                                str(m_index): {
                                    "content": {
                                        str(b_index): {
                                            "tool_use_id": [
                                                f"'{block['tool_use_id']}' answers no "
                                                "tool_use block of an earlier message"
                                            ]
                                        }
                                    }
                                }
                            }
                        }
                    )


class ThinkingSerializer(serializers.Serializer):
    """``thinking``: ``enabled`` (with a ``budget_tokens``), ``adaptive`` or ``disabled``.
    For a model that reasons apart, whether its template asks it to; a model that does not
    reason answers without thinking blocks, as Claude Code sends the field to any model."""

    type = serializers.ChoiceField(choices=("enabled", "adaptive", "disabled"))
    budget_tokens = serializers.IntegerField(required=False, min_value=1, max_value=MAX_C_INT)


class MessagesSerializer(CountTokensSerializer):
    """The body of ``POST /v1/messages``."""

    thinking = ThinkingSerializer(required=False, allow_null=True)

    max_tokens = serializers.IntegerField(min_value=1, max_value=MAX_C_INT)
    stop_sequences = serializers.ListField(
        child=StrictCharField(trim_whitespace=False),
        required=False,
        allow_null=True,
        max_length=MAX_STOP_SEQUENCES,
    )
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    top_k = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_C_INT
    )
    metadata = MetadataSerializer(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)

    @property
    def body(self) -> MessagesRequest:
        """The validated body, typed."""
        validated: MessagesRequest = self.validated_data
        return validated
