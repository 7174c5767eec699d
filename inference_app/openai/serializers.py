"""Request bodies of the OpenAI endpoints, validated with DRF serializers.

Each serializer's ``to_payload()`` gives the JSON a worker receives: the prompt or messages
and the sampling options under the names ``workers.engine.generation.SamplingOptions`` uses.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from rest_framework import serializers

from workers.broker.wire import EmbeddingsPayload, GenerationPayload

ROLES = ("system", "developer", "user", "assistant", "tool")


class StringOrListField(serializers.Field):
    """A string, or a list of strings (OpenAI's ``stop`` and ``input``)."""

    def __init__(
        self, *, max_items: int | None = None, allow_empty_strings: bool = True, **kwargs: Any
    ) -> None:
        self.max_items = max_items
        self.allow_empty_strings = allow_empty_strings
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        items = [data] if isinstance(data, str) else data
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise serializers.ValidationError("must be a string or a list of strings")
        if self.max_items is not None and len(items) > self.max_items:
            raise serializers.ValidationError(f"at most {self.max_items} items")
        if not self.allow_empty_strings and (not items or any(not i for i in items)):
            raise serializers.ValidationError("must not be empty")
        return list(items)

    def to_representation(self, value: Any) -> Any:
        return value


class MessageContentField(serializers.Field):
    """A message's content: a string, a list of content parts, or null."""

    def to_internal_value(self, data: Any) -> Any:
        if data is None or isinstance(data, str):
            return data
        if isinstance(data, list) and all(isinstance(p, dict) and "type" in p for p in data):
            for part in data:
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise serializers.ValidationError("a text part needs a string 'text'")
                if part["type"] not in ("text",):
                    raise serializers.ValidationError(
                        f"content part type '{part['type']}' is not supported by this model"
                    )
            return data
        raise serializers.ValidationError("must be a string, a list of content parts, or null")

    def to_representation(self, value: Any) -> Any:
        return value


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = MessageContentField(required=False, allow_null=True)
    name = serializers.CharField(required=False)
    tool_call_id = serializers.CharField(required=False)
    tool_calls = serializers.ListField(child=serializers.DictField(), required=False)


class FunctionSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
    description = serializers.CharField(required=False, allow_blank=True)
    parameters = serializers.DictField(required=False)
    strict = serializers.BooleanField(required=False, allow_null=True)

    def validate_parameters(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise serializers.ValidationError(f"not a valid JSON schema: {exc.message}") from exc
        return value


class ToolSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("function",))
    function = FunctionSerializer()


class ToolChoiceField(serializers.Field):
    """``"auto"``, ``"none"``, ``"required"``, or ``{"type": "function", "function":
    {"name": ...}}``."""

    def to_internal_value(self, data: Any) -> Any:
        if data in ("auto", "none", "required"):
            return data
        if (
            isinstance(data, dict)
            and data.get("type") == "function"
            and isinstance(data.get("function"), dict)
            and isinstance(data["function"].get("name"), str)
        ):
            return {"type": "function", "function": {"name": data["function"]["name"]}}
        raise serializers.ValidationError(
            'must be "auto", "none", "required" or {"type": "function", "function": {"name"}}'
        )

    def to_representation(self, value: Any) -> Any:
        return value


class StreamOptionsSerializer(serializers.Serializer):
    include_usage = serializers.BooleanField(default=False)


class JsonSchemaSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, max_length=64)
    description = serializers.CharField(required=False)
    schema = serializers.DictField(required=False, default=dict)
    strict = serializers.BooleanField(required=False, allow_null=True)

    def validate_schema(self, value: dict[str, Any]) -> dict[str, Any]:
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise serializers.ValidationError(f"not a valid JSON schema: {exc.message}") from exc
        return value


class ResponseFormatSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("text", "json_object", "json_schema"))
    json_schema = JsonSchemaSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs["type"] == "json_schema" and "json_schema" not in attrs:
            raise serializers.ValidationError({"json_schema": "required when type is json_schema"})
        return attrs


class SamplingSerializer(serializers.Serializer):
    """Parameters shared by chat and text completions."""

    model = serializers.CharField()
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    top_k = serializers.IntegerField(required=False, allow_null=True, min_value=0)
    min_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    repeat_penalty = serializers.FloatField(required=False, allow_null=True, min_value=0)
    presence_penalty = serializers.FloatField(
        required=False, allow_null=True, min_value=-2, max_value=2
    )
    frequency_penalty = serializers.FloatField(
        required=False, allow_null=True, min_value=-2, max_value=2
    )
    seed = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=2**32 - 2
    )
    stop = StringOrListField(required=False, allow_null=True, max_items=4)
    n = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1)
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    user = serializers.CharField(required=False, allow_blank=True)

    _OPTION_NAMES = (
        "temperature",
        "top_p",
        "top_k",
        "min_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
        "seed",
        "stop",
    )

    def options(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The sampling options: the model's defaults, overridden by the request."""
        data = self.validated_data
        options = {k: v for k, v in defaults.items() if k in self._OPTION_NAMES}
        options.update({k: data[k] for k in self._OPTION_NAMES if data.get(k) is not None})
        options["max_tokens"] = (
            data.get("max_tokens")
            or defaults.get("num_predict")
            or settings.HERD_DEFAULT_MAX_TOKENS
        )
        return options


class ChatCompletionSerializer(SamplingSerializer):
    messages = MessageSerializer(many=True, allow_empty=False)
    max_completion_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    response_format = ResponseFormatSerializer(required=False, allow_null=True)
    tools = ToolSerializer(many=True, required=False, allow_null=True)
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    logprobs = serializers.BooleanField(required=False, allow_null=True, default=False)
    top_logprobs = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=20
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("top_logprobs") and not attrs.get("logprobs"):
            raise serializers.ValidationError({"top_logprobs": "needs logprobs set to true"})
        choice = attrs.get("tool_choice")
        names = {t["function"]["name"] for t in attrs.get("tools") or []}
        if choice not in (None, "none", "auto") and not names:
            raise serializers.ValidationError({"tool_choice": "needs tools"})
        if isinstance(choice, dict) and choice["function"]["name"] not in names:
            raise serializers.ValidationError(
                {"tool_choice": f"names '{choice['function']['name']}', which is not a tool"}
            )
        return attrs

    def to_payload(self, defaults: dict[str, Any]) -> GenerationPayload:
        data = self.validated_data
        options = self.options(defaults)
        if data.get("max_completion_tokens"):
            options["max_tokens"] = data["max_completion_tokens"]
        response_format = data.get("response_format")
        if response_format and response_format["type"] != "text":
            options["response_format"] = {
                "type": response_format["type"],
                "schema": response_format.get("json_schema", {}).get("schema", {}),
            }
        if data.get("logprobs"):
            options["logprobs"] = True
            options["top_logprobs"] = data.get("top_logprobs") or 0
        messages = [{k: v for k, v in m.items() if v is not None} for m in data["messages"]]
        # The model record may opt in to cutting an over-long prompt down, as /api does.
        payload = GenerationPayload(
            messages=messages, options=options, truncate=bool(defaults.get("truncate"))
        )
        if data.get("tools"):
            payload.tools = [
                {"type": "function", "function": dict(t["function"])} for t in data["tools"]
            ]
            payload.tool_choice = data.get("tool_choice") or "auto"
        return payload


class CompletionSerializer(SamplingSerializer):
    prompt = StringOrListField(max_items=1)
    echo = serializers.BooleanField(required=False, default=False)
    suffix = serializers.CharField(required=False, allow_null=True)
    best_of = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1)

    def validate_suffix(self, value: str | None) -> str | None:
        if value:
            raise serializers.ValidationError("suffix is not supported")
        return value

    def validate_echo(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError("echo is not supported")
        return value

    def to_payload(self, defaults: dict[str, Any]) -> GenerationPayload:
        return GenerationPayload(
            prompt=self.validated_data["prompt"][0],
            options=self.options(defaults),
            truncate=bool(defaults.get("truncate")),
        )


class EmbeddingSerializer(serializers.Serializer):
    model = serializers.CharField()
    input = StringOrListField(allow_empty_strings=False)
    encoding_format = serializers.ChoiceField(choices=("float", "base64"), default="float")
    dimensions = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    user = serializers.CharField(required=False, allow_blank=True)

    def to_payload(self) -> EmbeddingsPayload:
        data = self.validated_data
        return EmbeddingsPayload(input=data["input"], encoding_format=data["encoding_format"])
