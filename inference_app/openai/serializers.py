"""Request bodies of the OpenAI endpoints, validated with DRF serializers.

Each serializer's ``to_payload()`` gives the JSON a worker receives: the prompt or messages
and the sampling options under the names ``workers.engine.generation.SamplingOptions`` uses.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from django.conf import settings
from rest_framework import serializers

from inference_app.images import ImageList, check_vision
from inference_app.input_checks import (
    MAX_C_INT,
    MAX_MODEL_NAME,
    StrictCharField,
    UnicodeBody,
    check_json_schema,
)
from inference_app.openai.bodies import (
    ChatRequest,
    CompletionRequest,
    ResponseFormatIn,
    SamplingRequest,
)
from models_app.models import ModelRecord
from models_app.parameters import ModelOptions
from project.errors import ApiError
from project.json_types import JsonObject
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


class PromptField(serializers.Field):
    """OpenAI's ``prompt`` and embeddings ``input``: a string, a list of strings, a list of
    token ids, or a list of token-id lists. Gives a list of prompts, each a string or a list
    of token ids."""

    def __init__(self, *, max_items: int, **kwargs: Any) -> None:
        self.max_items = max_items
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str | list[int]]:
        if isinstance(data, str):
            items: list[Any] = [data]
        elif isinstance(data, list) and data and all(_is_token(t) for t in data):
            items = [data]
        elif isinstance(data, list):
            items = data
        else:
            raise serializers.ValidationError(
                "must be a string, a list of strings, or a list of token ids (or of lists of them)"
            )
        if not items:
            raise serializers.ValidationError("must not be empty")
        if len(items) > self.max_items:
            raise serializers.ValidationError(f"at most {self.max_items} items")
        for item in items:
            if isinstance(item, str):
                continue
            if not isinstance(item, list) or not all(_is_token(t) for t in item):
                raise serializers.ValidationError(
                    "each item must be a string or a list of token ids"
                )
            if not item:
                raise serializers.ValidationError("a token list must not be empty")
        return items

    def to_representation(self, value: Any) -> Any:
        return value


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_C_INT


class MessageContentField(serializers.Field):
    """A message's content: a string, a list of content parts (``text``, ``image_url``), or
    null. An ``image_url`` part's ``image_url`` is an object with a string ``url`` (a bare
    string is taken too); the image is read in ``to_payload``."""

    def to_internal_value(self, data: Any) -> Any:
        if data is None or isinstance(data, str):
            return data
        if isinstance(data, list) and all(isinstance(p, dict) and "type" in p for p in data):
            for part in data:
                if part["type"] == "text" and not isinstance(part.get("text"), str):
                    raise serializers.ValidationError("a text part needs a string 'text'")
                if part["type"] == "image_url" and image_part_url(part) is None:
                    raise serializers.ValidationError(
                        "an image_url part needs an 'image_url' object with a string 'url'"
                    )
                if part["type"] not in ("text", "image_url"):
                    raise serializers.ValidationError(
                        f"content part type '{part['type']}' is not supported by this model"
                    )
            return data
        raise serializers.ValidationError("must be a string, a list of content parts, or null")

    def to_representation(self, value: Any) -> Any:
        return value


def image_part_url(part: dict[str, Any]) -> str | None:
    """The URL of an ``image_url`` content part, or None when it has none."""
    image = part.get("image_url")
    if isinstance(image, dict):
        image = image.get("url")
    return image if isinstance(image, str) else None


def _has_images(messages: list[dict[str, Any]]) -> bool:
    return any(
        isinstance(m.get("content"), list)
        and any(part["type"] == "image_url" for part in m["content"])
        for m in messages
    )


def _read_images(messages: list[dict[str, Any]], images: ImageList) -> list[dict[str, Any]]:
    """``messages`` with each ``image_url`` part read into ``images`` and marked in its place
    by an image part (``inference_app.images``)."""
    out = []
    for i, message in enumerate(messages):
        content = message.get("content")
        if isinstance(content, list):
            content = [
                images.add_url(url, f"messages.{i}.content.{j}.image_url")
                if (url := image_part_url(part)) is not None and part["type"] == "image_url"
                else part
                for j, part in enumerate(content)
            ]
            message = {**message, "content": content}
        out.append(message)
    return out


class CalledFunctionSerializer(serializers.Serializer):
    name = StrictCharField()
    arguments = StrictCharField(required=False, allow_blank=True, default="{}")


class ToolCallSerializer(serializers.Serializer):
    """An assistant message's earlier call: the template renders its function's name."""

    id = StrictCharField(required=False)
    type = serializers.ChoiceField(choices=("function",), default="function")
    function = CalledFunctionSerializer()


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=ROLES)
    content = MessageContentField(required=False, allow_null=True)
    # An earlier answer's reasoning, as vLLM takes it back (templates that show it read it).
    reasoning_content = StrictCharField(required=False, allow_null=True, allow_blank=True)
    name = StrictCharField(required=False)
    tool_call_id = StrictCharField(required=False)
    tool_calls = ToolCallSerializer(many=True, required=False)


class FunctionSerializer(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
    description = serializers.CharField(required=False, allow_blank=True)
    parameters = serializers.DictField(required=False)
    strict = serializers.BooleanField(required=False, allow_null=True)

    def validate_parameters(self, value: JsonObject) -> JsonObject:
        return check_json_schema(value)


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

    def validate_schema(self, value: JsonObject) -> JsonObject:
        return check_json_schema(value)


class ResponseFormatSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("text", "json_object", "json_schema"))
    json_schema = JsonSchemaSerializer(required=False)

    def validate(self, attrs: ResponseFormatIn) -> ResponseFormatIn:
        if attrs["type"] == "json_schema" and "json_schema" not in attrs:
            raise serializers.ValidationError({"json_schema": "required when type is json_schema"})
        return attrs


# OpenAI's ``reasoning_effort``: "none" asks a reasoning model not to reason.
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high")


def reasoning_variables(effort: str) -> dict[str, Any]:
    """The chat template variables for a reasoning effort: ``enable_thinking`` (Qwen's and
    others' templates) and ``reasoning_effort`` (for templates that take a level)."""
    if effort == "none":
        return {"enable_thinking": False}
    return {"enable_thinking": True, "reasoning_effort": effort}


# Choices one request may ask for (``n`` times the prompts): each is a generation of its own.
MAX_CHOICES = 16


class SamplingSerializer(UnicodeBody):
    """Parameters shared by chat and text completions."""

    model = StrictCharField(max_length=MAX_MODEL_NAME)
    max_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_C_INT
    )
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    top_k = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=MAX_C_INT
    )
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
    n = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_CHOICES
    )
    stream = serializers.BooleanField(required=False, default=False)
    stream_options = StreamOptionsSerializer(required=False, allow_null=True)
    user = StrictCharField(required=False, allow_blank=True)

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

    def options(self, defaults: ModelOptions) -> dict[str, Any]:
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

    def prompt_count(self) -> int:
        return 1

    def choice_count(self) -> int:
        """How many generations the request asks for: ``n`` for each prompt."""
        return (self.validated_data.get("n") or 1) * self.prompt_count()

    def validate_choices(self, attrs: SamplingRequest, prompts: int) -> None:
        if (attrs.get("n") or 1) * prompts > MAX_CHOICES:
            raise serializers.ValidationError(
                {"n": f"n times the prompts is at most {MAX_CHOICES} generations per request"}
            )

    def to_payload(self, defaults: ModelOptions) -> GenerationPayload:
        raise NotImplementedError

    def check_model(self, record: ModelRecord) -> None:
        """Raises ApiError when the request asks ``record`` for what it cannot do."""

    def payload_for(self, record: ModelRecord) -> GenerationPayload:
        """The payload for ``record``: the request over the record's default options."""
        self.check_model(record)
        return self.to_payload(record.default_options)

    def payloads_for(self, record: ModelRecord) -> list[GenerationPayload]:
        self.check_model(record)
        return self.to_payloads(record.default_options)

    def to_payloads(self, defaults: ModelOptions) -> list[GenerationPayload]:
        """One payload per choice, in the order of the choices' ``index``: ``n`` for each
        prompt. With a ``seed``, choice ``i`` samples with ``seed + i``, so that the choices
        differ and the same request still answers the same."""
        return [
            _with_seed_offset(payload, i)
            for payload in self.payloads_per_prompt(defaults)
            for i in range(self.validated_data.get("n") or 1)
        ]

    def payloads_per_prompt(self, defaults: ModelOptions) -> list[GenerationPayload]:
        return [self.to_payload(defaults)]


def _with_seed_offset(payload: GenerationPayload, offset: int) -> GenerationPayload:
    seed = payload.options.get("seed")
    if seed is None or offset == 0:
        return payload
    options = {**payload.options, "seed": (seed + offset) % (2**32 - 1)}
    return dataclasses.replace(payload, options=options)


class ChatCompletionSerializer(SamplingSerializer):
    messages = MessageSerializer(many=True, allow_empty=False)
    max_completion_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_C_INT
    )
    response_format = ResponseFormatSerializer(required=False, allow_null=True)
    tools = ToolSerializer(many=True, required=False, allow_null=True)
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    logprobs = serializers.BooleanField(required=False, allow_null=True, default=False)
    top_logprobs = serializers.IntegerField(
        required=False, allow_null=True, min_value=0, max_value=20
    )
    reasoning_effort = serializers.ChoiceField(
        choices=REASONING_EFFORTS, required=False, allow_null=True
    )

    def validate(self, attrs: ChatRequest) -> ChatRequest:
        self.validate_choices(attrs, 1)
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

    def check_model(self, record: ModelRecord) -> None:
        if _has_images(self.validated_data["messages"]):
            check_vision(record.name, record.derived_capabilities(), "messages")
        effort = self.validated_data.get("reasoning_effort")
        if effort not in (None, "none") and "thinking" not in record.derived_capabilities():
            raise ApiError(
                f"model '{record.name}' does not reason, so it takes no reasoning effort",
                code="unsupported_parameter",
                param="reasoning_effort",
            )

    def to_payload(self, defaults: ModelOptions) -> GenerationPayload:
        data: ChatRequest = self.validated_data
        options = self.options(defaults)
        if data.get("max_completion_tokens"):
            options["max_tokens"] = data["max_completion_tokens"]
        response_format = data.get("response_format")
        if response_format and response_format["type"] != "text":
            options["response_format"] = {
                "type": response_format["type"],
                "schema": response_format.get("json_schema", {}).get("schema", {}),
                "param": "response_format.json_schema.schema",
            }
        if data.get("logprobs"):
            options["logprobs"] = True
            options["top_logprobs"] = data.get("top_logprobs") or 0
        messages = [{k: v for k, v in m.items() if v is not None} for m in data["messages"]]
        images = ImageList()
        messages = _read_images(messages, images)
        effort = data.get("reasoning_effort")
        asked_tools = data.get("tools")
        tools = (
            [{"type": "function", "function": dict(t["function"])} for t in asked_tools]
            if asked_tools
            else None
        )
        return GenerationPayload(
            messages=messages,
            images=images.encoded or None,
            options=options,
            # The model record may opt in to cutting an over-long prompt down, as /api does.
            truncate=bool(defaults.get("truncate")),
            separate_reasoning=True,
            template_variables=reasoning_variables(effort) if effort is not None else None,
            tools=tools,
            tool_choice=(data.get("tool_choice") or "auto") if tools else None,
        )


class CompletionSerializer(SamplingSerializer):
    prompt = PromptField(max_items=MAX_CHOICES)
    echo = serializers.BooleanField(required=False, allow_null=True, default=False)
    # Filled in the middle with the model's FIM tokens; a model without them answers 400.
    suffix = StrictCharField(required=False, allow_null=True, allow_blank=True)
    best_of = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=1)

    def validate(self, attrs: CompletionRequest) -> CompletionRequest:
        self.validate_choices(attrs, len(attrs["prompt"]))
        return attrs

    def prompt_count(self) -> int:
        return len(self.validated_data["prompt"])

    def to_payload(self, defaults: ModelOptions) -> GenerationPayload:
        return self.payloads_per_prompt(defaults)[0]

    def payloads_per_prompt(self, defaults: ModelOptions) -> list[GenerationPayload]:
        data: CompletionRequest = self.validated_data
        return [
            GenerationPayload(
                prompt=prompt if isinstance(prompt, str) else None,
                prompt_tokens=None if isinstance(prompt, str) else list(prompt),
                options=self.options(defaults),
                echo=bool(data.get("echo")),
                suffix=data.get("suffix") or None,
                truncate=bool(defaults.get("truncate")),
            )
            for prompt in data["prompt"]
        ]


# As OpenAI limits one embeddings request.
MAX_EMBEDDING_INPUTS = 2048


class EmbeddingSerializer(UnicodeBody):
    model = StrictCharField(max_length=MAX_MODEL_NAME)
    input = PromptField(max_items=MAX_EMBEDDING_INPUTS)
    encoding_format = serializers.ChoiceField(choices=("float", "base64"), default="float")
    dimensions = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_C_INT
    )
    user = StrictCharField(required=False, allow_blank=True)

    def validate_input(self, value: list[str | list[int]]) -> list[str | list[int]]:
        if any(item == "" for item in value):
            raise serializers.ValidationError("must not be empty")
        return value

    def to_payload(self) -> EmbeddingsPayload:
        data = self.validated_data
        return EmbeddingsPayload(input=data["input"], encoding_format=data["encoding_format"])
