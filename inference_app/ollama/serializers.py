"""Request bodies of the Ollama endpoints, validated with DRF serializers.

``to_payload(record)`` gives the JSON a worker receives (see ``workers.worker.inference``): messages
or a prompt, sampling options under ``workers.engine.generation.SamplingOptions``' names (Ollama's
defaults filled in, then the model record's, then the request's), and the Ollama-only knobs
(``keep_alive`` in seconds, ``num_ctx``, ``tools``, ``action`` for a bare load or unload).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from django.conf import settings
from rest_framework import serializers

from inference_app.images import ImageList
from inference_app.input_checks import (
    MAX_C_INT,
    MAX_MODEL_NAME,
    StrictCharField,
    UnicodeBody,
    check_json_schema,
)
from inference_app.openai.serializers import MAX_EMBEDDING_INPUTS, StringOrListField
from models_app.models import ModelRecord
from project.durations import parse_duration
from project.edge.context import RequestContext
from project.errors import ApiError
from workers.broker.wire import EmbeddingsPayload, GenerationPayload

# Ollama's own sampling defaults (its API differs from OpenAI's here: a repeat penalty).
OLLAMA_DEFAULTS: dict[str, Any] = {
    "temperature": 0.8,
    "top_k": 40,
    "top_p": 0.9,
    "min_p": 0.0,
    "repeat_penalty": 1.1,
    "presence_penalty": 0.0,
    "frequency_penalty": 0.0,
}
_SAMPLING = (*OLLAMA_DEFAULTS, "seed", "stop")
# num_predict -1 (no limit) and -2 (fill the context) both run to the end of the context.
_UNLIMITED = 1 << 30
# The longest keep_alive Go's time.Duration (which Ollama parses it into) holds: about 292
# years, in seconds.
MAX_KEEP_ALIVE = (2**63 - 1) / 1e9


class KeepAliveField(serializers.Field):
    """Seconds, or a duration string like ``"5m"``; negative keeps the model forever. Capped
    at the serializer's ``max_keep_alive`` context (``keep_alive_cap``), forever included."""

    def to_internal_value(self, data: Any) -> float:
        try:
            seconds = parse_duration(data)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        if not math.isfinite(seconds) or abs(seconds) > MAX_KEEP_ALIVE:
            raise serializers.ValidationError(
                f"a duration is at most {MAX_KEEP_ALIVE:.0f} seconds either way"
            )
        cap = self.context.get("max_keep_alive")
        if cap is not None and (seconds < 0 or seconds > cap):
            return float(cap)
        return seconds

    def to_representation(self, value: Any) -> Any:
        return value


def keep_alive_cap(ctx: RequestContext) -> dict[str, float]:
    """The serializer context of a request: a key whose user is not staff keeps a model at
    most ``HERD_MAX_KEEP_ALIVE``; staff, and everyone with keys off, as long as they ask."""
    key = ctx.key
    if key is None or key.user_is_staff:
        return {}
    return {"max_keep_alive": float(settings.HERD_MAX_KEEP_ALIVE)}


class FormatField(serializers.Field):
    """``"json"``, a JSON schema, or empty: the grammar the output must follow."""

    def to_internal_value(self, data: Any) -> dict[str, Any] | None:
        if data in ("", None):
            return None
        if data == "json":
            return {"type": "json_object"}
        if isinstance(data, dict):
            return {"type": "json_schema", "schema": check_json_schema(data), "param": "format"}
        raise serializers.ValidationError('must be "json" or a JSON schema')

    def to_representation(self, value: Any) -> Any:
        return value


class OptionsSerializer(serializers.Serializer):
    """The ``options`` object. Options Herd does not use (``num_gpu``, ``mirostat``...) are
    accepted and ignored, as Ollama's runner ignores the ones its backend lacks."""

    num_ctx = serializers.IntegerField(required=False, min_value=1, max_value=MAX_C_INT)
    num_predict = serializers.IntegerField(required=False, min_value=-2, max_value=MAX_C_INT)
    temperature = serializers.FloatField(required=False, min_value=0)
    top_k = serializers.IntegerField(required=False, min_value=0, max_value=MAX_C_INT)
    top_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    min_p = serializers.FloatField(required=False, min_value=0, max_value=1)
    seed = serializers.IntegerField(required=False, min_value=-1, max_value=2**32 - 2)
    stop = StringOrListField(required=False)
    repeat_penalty = serializers.FloatField(required=False, min_value=0)
    presence_penalty = serializers.FloatField(required=False)
    frequency_penalty = serializers.FloatField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        # Ollama skips an option given as null (its Options.FromMap): langchain-ollama sends
        # every option it knows of, most of them null.
        if isinstance(data, dict):
            data = {name: value for name, value in data.items() if value is not None}
        return super().to_internal_value(data)


class FunctionSerializer(serializers.Serializer):
    name = StrictCharField(max_length=64)
    description = StrictCharField(required=False, allow_blank=True)
    parameters = serializers.DictField(required=False)

    def validate_parameters(self, value: dict[str, Any]) -> dict[str, Any]:
        return check_json_schema(value)


class ToolSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("function",), default="function")
    function = FunctionSerializer()


class CalledFunctionSerializer(serializers.Serializer):
    name = StrictCharField()
    arguments = serializers.DictField(required=False, default=dict)
    index = serializers.IntegerField(required=False)


class ToolCallSerializer(serializers.Serializer):
    function = CalledFunctionSerializer()


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=("system", "user", "assistant", "tool"))
    content = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    images = serializers.ListField(child=StrictCharField(), required=False)
    tool_calls = ToolCallSerializer(many=True, required=False)
    tool_name = StrictCharField(required=False)
    thinking = StrictCharField(required=False, allow_blank=True)


class ThinkField(serializers.Field):
    """``think``: true, false, or an effort ("high", "medium", "low", "max"): whether a model that
    reasons apart should reason first, and how hard (a template that takes a level reads
    ``reasoning_effort``)."""

    def to_internal_value(self, data: Any) -> bool | str:
        if isinstance(data, bool) or data in ("high", "medium", "low", "max"):
            return data
        raise serializers.ValidationError('must be true, false, "high", "medium", "low" or "max"')

    def to_representation(self, value: Any) -> Any:
        return value


class _GenerationSerializer(UnicodeBody):
    model = StrictCharField(max_length=MAX_MODEL_NAME)
    stream = serializers.BooleanField(required=False, default=True)
    format = FormatField(required=False, allow_null=True)
    options = OptionsSerializer(required=False)
    keep_alive = KeepAliveField(required=False, allow_null=True)
    logprobs = serializers.BooleanField(required=False, default=False)
    top_logprobs = serializers.IntegerField(required=False, min_value=0, max_value=20, default=0)
    think = ThinkField(required=False, allow_null=True)
    truncate = serializers.BooleanField(required=False, default=True)

    def common_payload(self, record: ModelRecord) -> GenerationPayload:
        data = self.validated_data
        requested = data.get("options") or {}
        defaults = record.default_options or {}
        options = dict(OLLAMA_DEFAULTS)
        options.update({k: v for k, v in defaults.items() if k in _SAMPLING})
        options.update({k: v for k, v in requested.items() if k in _SAMPLING})
        if options.get("seed") == -1:
            options.pop("seed")  # Ollama's "random"
        num_predict = requested.get("num_predict", defaults.get("num_predict"))
        if num_predict is None:
            options["max_tokens"] = settings.HERD_DEFAULT_MAX_TOKENS
        else:
            options["max_tokens"] = _UNLIMITED if num_predict < 0 else num_predict
        if data.get("format"):
            options["response_format"] = data["format"]
        if data["logprobs"]:
            options["logprobs"] = True
            options["top_logprobs"] = data["top_logprobs"]
        num_ctx = requested.get("num_ctx", defaults.get("num_ctx"))
        if num_ctx and record.context_length:
            # As llama.cpp would: a context past the trained one is cut to it.
            num_ctx = min(num_ctx, record.context_length)
        variables: dict[str, Any] = {}
        think = data.get("think")
        if think not in (None, False) and "thinking" not in record.derived_capabilities():
            raise ApiError(f'"{record.name}" does not support thinking')
        if think is not None:
            variables["enable_thinking"] = think is not False
        if isinstance(think, str):
            variables["reasoning_effort"] = think
        return GenerationPayload(
            options=options,
            num_ctx=num_ctx or None,
            keep_alive=data.get("keep_alive"),
            # A prompt longer than the context is cut down to fit (workers.engine.truncation).
            truncate=data["truncate"],
            template_variables=variables or None,
            # The reasoning goes in ``thinking``, as Ollama answers it.
            separate_reasoning=True,
        )


def check_images(record: ModelRecord, images: list[str]) -> None:
    if images and "vision" not in record.derived_capabilities():
        raise ApiError(f"model '{record.name}' does not support images: it has no vision input")


def _with_images(
    content: str, images: list[str], read: ImageList, param: str
) -> str | list[dict[str, Any]]:
    """A message's content with its ``images`` (base64) ahead of its text, as Ollama places
    them; the images go to ``read``."""
    if not images:
        return content
    parts = [read.add_base64(image, f"{param}.{i}") for i, image in enumerate(images)]
    return [*parts, {"type": "text", "text": content}]


def bare_action(keep_alive: float | None) -> str:
    """An empty prompt loads the model; with ``keep_alive: 0`` it unloads it."""
    return "unload" if keep_alive == 0 else "load"


class ChatSerializer(_GenerationSerializer):
    messages = MessageSerializer(many=True, required=False, default=list)
    tools = ToolSerializer(many=True, required=False)

    def to_payload(self, record: ModelRecord) -> GenerationPayload:
        data = self.validated_data
        payload = self.common_payload(record)
        messages = data["messages"]
        check_images(record, [i for m in messages for i in m.get("images", [])])
        if not messages:
            return replace(payload, action=bare_action(data.get("keep_alive")))
        images = ImageList()
        worker_messages = [
            _worker_message(m, images, f"messages.{i}.images") for i, m in enumerate(messages)
        ]
        payload = replace(payload, messages=worker_messages, images=images.encoded or None)
        if data.get("tools"):
            tools = [{"type": "function", "function": dict(t["function"])} for t in data["tools"]]
            payload = replace(payload, tools=tools, tool_choice="auto")
        return payload


def _worker_message(message: dict[str, Any], images: ImageList, param: str) -> dict[str, Any]:
    content = _with_images(message.get("content", ""), message.get("images") or [], images, param)
    out: dict[str, Any] = {"role": message["role"], "content": content}
    if message.get("tool_calls"):
        out["tool_calls"] = [
            {"type": "function", "function": dict(call["function"])}
            for call in message["tool_calls"]
        ]
    if message.get("tool_name"):
        out["tool_name"] = message["tool_name"]
    if message.get("thinking"):
        out["reasoning_content"] = message["thinking"]  # the name chat templates read
    return out


class GenerateSerializer(_GenerationSerializer):
    prompt = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    system = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    raw = serializers.BooleanField(required=False, default=False)
    images = serializers.ListField(child=StrictCharField(), required=False, default=list)
    suffix = StrictCharField(required=False, allow_blank=True, default="", trim_whitespace=False)

    def to_payload(self, record: ModelRecord) -> GenerationPayload:
        data = self.validated_data
        payload = self.common_payload(record)
        check_images(record, data["images"])
        prompt, system = data["prompt"], data["system"]
        if data["suffix"]:
            # Fill-in-the-middle is the template's to write, as in Ollama.
            if "insert" not in record.derived_capabilities() or data["raw"]:
                raise ApiError(
                    f'suffix: "{record.name}" does not support insert (fill-in-the-middle): '
                    "its template has no suffix"
                )
            variables = {**(payload.template_variables or {}), "suffix": data["suffix"]}
            payload = replace(payload, template_variables=variables)
        if data["images"] and (data["raw"] or not record.chat_template):
            # The template places an image; a raw prompt has nowhere to put one.
            raise ApiError("images need the model's chat template: send them without raw")
        if not prompt:
            return replace(payload, action=bare_action(data.get("keep_alive")))
        if data["raw"]:
            # The text as the model wrote it.
            return replace(payload, prompt=prompt, separate_reasoning=False)
        if record.chat_template:
            # Ollama renders a generate prompt as one user turn of the model's template.
            system_turn = [{"role": "system", "content": system}] if system else []
            images = ImageList()
            content = _with_images(prompt, data["images"], images, "images")
            return replace(
                payload,
                messages=[*system_turn, {"role": "user", "content": content}],
                images=images.encoded or None,
            )
        return replace(payload, prompt=f"{system}\n\n{prompt}" if system else prompt)


class EmbedSerializer(UnicodeBody):
    model = StrictCharField(max_length=MAX_MODEL_NAME)
    input = StringOrListField(allow_empty_strings=False, max_items=MAX_EMBEDDING_INPUTS)
    truncate = serializers.BooleanField(required=False, default=True)
    options = OptionsSerializer(required=False)
    keep_alive = KeepAliveField(required=False, allow_null=True)
    dimensions = serializers.IntegerField(required=False, min_value=1, max_value=MAX_C_INT)

    def to_payload(self, record: ModelRecord) -> EmbeddingsPayload:
        data = self.validated_data
        dimensions = data.get("dimensions")
        if dimensions and dimensions != record.embedding_length:
            raise ApiError(
                f"dimensions: this model's embeddings have {record.embedding_length} "
                f"dimensions, and it was not trained to give fewer",
                param="dimensions",
            )
        num_ctx = (data.get("options") or {}).get("num_ctx")
        if num_ctx and record.context_length:
            num_ctx = min(num_ctx, record.context_length)
        return EmbeddingsPayload(
            input=data["input"],
            truncate=data["truncate"],
            num_ctx=num_ctx or None,
            keep_alive=data.get("keep_alive"),
        )


class EmbeddingsSerializer(UnicodeBody):
    """The older ``/api/embeddings``: one ``prompt``, one ``embedding``."""

    model = StrictCharField(max_length=MAX_MODEL_NAME)
    prompt = StrictCharField(trim_whitespace=False)
    options = OptionsSerializer(required=False)
    keep_alive = KeepAliveField(required=False, allow_null=True)

    def to_payload(self, record: ModelRecord) -> EmbeddingsPayload:
        data = self.validated_data
        # The older endpoint returns the model's raw vector; /api/embed normalizes.
        return EmbeddingsPayload(
            input=[data["prompt"]], normalize=False, keep_alive=data.get("keep_alive")
        )
