"""The body of ``POST /v1/responses``, validated and translated into a chat request.

The Responses fields are checked here; the request then becomes the body of a
``/v1/chat/completions`` request (instructions as the first system message, the input items
as messages after those of ``previous_response_id``, function tools and ``text.format`` in
chat's names), which ``ChatCompletionSerializer`` validates and turns into the worker's
payload, so both APIs generate alike. Its errors are reported under the Responses names.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from rest_framework import serializers

from inference_app.input_checks import MAX_C_INT, MAX_MODEL_NAME, StrictCharField, UnicodeBody
from inference_app.openai.bodies import (
    ChatMessageIn,
    ChatRequest,
    FunctionIn,
    JsonSchemaIn,
    ToolChoice,
)
from inference_app.openai.serializers import REASONING_EFFORTS, ChatCompletionSerializer
from inference_app.responses_api.bodies import (
    Echo,
    FunctionTool,
    Item,
    ReasoningEcho,
    ResponseRequest,
    TextFormatIn,
)
from inference_app.responses_api.items import normalize_input, to_messages
from inference_app.responses_api.tools import ToolSet, left_out_name, log_left_out, split_tools
from models_app.models import ModelRecord
from models_app.parameters import ModelOptions
from project.errors import ApiError
from project.validation import first_error
from workers.broker.wire import GenerationPayload

# OpenAI's least max_output_tokens.
MIN_OUTPUT_TOKENS = 16
# OpenAI's limits on metadata: 16 pairs, keys of 64 characters, values of 512.
MAX_METADATA_PAIRS, MAX_METADATA_KEY, MAX_METADATA_VALUE = 16, 64, 512
# A chat error's param (by prefix) as the Responses request names it.
CHAT_PARAMS = (
    ("response_format.json_schema.", "text.format."),
    ("response_format", "text.format"),
    ("max_completion_tokens", "max_output_tokens"),
    ("messages", "input"),
    ("reasoning_effort", "reasoning.effort"),
)


class InputField(serializers.Field):
    """``input``: a string or a list of items, as ``items.normalize_input`` reads them."""

    def to_internal_value(self, data: Any) -> list[Item]:
        return normalize_input(data)

    def to_representation(self, value: Any) -> Any:
        return value


class MetadataField(serializers.Field):
    def to_internal_value(self, data: Any) -> dict[str, str]:
        if not isinstance(data, dict):
            raise serializers.ValidationError("must be an object of strings")
        if len(data) > MAX_METADATA_PAIRS:
            raise serializers.ValidationError(f"at most {MAX_METADATA_PAIRS} pairs")
        for key, value in data.items():
            if len(key) > MAX_METADATA_KEY:
                raise serializers.ValidationError(f"keys are at most {MAX_METADATA_KEY} long")
            if not isinstance(value, str) or len(value) > MAX_METADATA_VALUE:
                raise serializers.ValidationError(
                    f"values are strings of at most {MAX_METADATA_VALUE} characters"
                )
        return dict(data)

    def to_representation(self, value: Any) -> Any:
        return value


class ToolsField(serializers.Field):
    """``tools``: the function tools the model sees, namespaces unpacked, the tools Herd
    cannot run left out (``tools.split_tools``)."""

    def to_internal_value(self, data: Any) -> ToolSet:
        return split_tools(data)

    def to_representation(self, value: Any) -> Any:
        return value


class ToolChoiceField(serializers.Field):
    """``"auto"``, ``"none"``, ``"required"``, ``{"type": "function", "name": ...}``, or a
    choice of another kind of tool (``{"type": "web_search"}``, ``{"type": "custom", "name":
    ...}``), which ``ResponseSerializer.validate`` refuses by name."""

    def to_internal_value(self, data: Any) -> Any:
        if data in ("auto", "none", "required"):
            return data
        if (
            isinstance(data, dict)
            and data.get("type") == "function"
            and isinstance(data.get("name"), str)
        ):
            return {"type": "function", "name": data["name"]}
        if (
            isinstance(data, dict)
            and isinstance(data.get("type"), str)
            and data["type"] not in ("function", "allowed_tools")
        ):
            return dict(data)
        raise serializers.ValidationError(
            'must be "auto", "none", "required" or {"type": "function", "name"}'
        )

    def to_representation(self, value: Any) -> Any:
        return value


class TextFormatSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=("text", "json_object", "json_schema"))
    name = serializers.CharField(required=False, max_length=64)
    description = serializers.CharField(required=False)
    schema = serializers.DictField(required=False)
    strict = serializers.BooleanField(required=False, allow_null=True)

    def validate(self, attrs: TextFormatIn) -> TextFormatIn:
        if attrs["type"] == "json_schema":
            for name in ("name", "schema"):
                if name not in attrs:
                    raise serializers.ValidationError({name: "required when type is json_schema"})
        return attrs


class TextSerializer(serializers.Serializer):
    format = TextFormatSerializer(required=False)
    verbosity = serializers.ChoiceField(
        choices=("low", "medium", "high"), required=False, allow_null=True
    )


class ReasoningSerializer(serializers.Serializer):
    """``reasoning``: how hard a reasoning model should think (``effort``, as
    ``reasoning_effort`` on chat). Herd answers the reasoning whole, so a ``summary`` asked
    for is accepted and the reasoning item's text is the reasoning itself."""

    effort = serializers.ChoiceField(choices=REASONING_EFFORTS, required=False, allow_null=True)
    summary = serializers.ChoiceField(
        choices=("auto", "concise", "detailed"), required=False, allow_null=True
    )
    generate_summary = serializers.ChoiceField(
        choices=("auto", "concise", "detailed"), required=False, allow_null=True
    )


class ResponseSerializer(UnicodeBody):
    """A Responses request. ``context["previous_messages"]`` holds the messages of the
    response ``previous_response_id`` names (the view finds it); without that key (a batch
    line) the field is refused, as nothing is stored to continue from."""

    model = StrictCharField(max_length=MAX_MODEL_NAME)
    input = InputField()
    instructions = StrictCharField(required=False, allow_null=True, allow_blank=True)
    max_output_tokens = serializers.IntegerField(
        required=False, allow_null=True, min_value=MIN_OUTPUT_TOKENS, max_value=MAX_C_INT
    )
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    tools = ToolsField(required=False, allow_null=True)
    tool_choice = ToolChoiceField(required=False, allow_null=True)
    parallel_tool_calls = serializers.BooleanField(required=False, allow_null=True)
    reasoning = ReasoningSerializer(required=False, allow_null=True)
    text = TextSerializer(required=False, allow_null=True)
    metadata = MetadataField(required=False, allow_null=True)
    user = StrictCharField(required=False, allow_blank=True)
    store = serializers.BooleanField(required=False, allow_null=True)
    previous_response_id = StrictCharField(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, allow_null=True)

    chat: ChatCompletionSerializer

    def validate(self, attrs: ResponseRequest) -> ResponseRequest:
        tools: ToolSet = attrs.get("tools") or ToolSet()
        choice = attrs.get("tool_choice")
        if isinstance(choice, dict) and choice["type"] != "function":
            raise serializers.ValidationError(
                {
                    "tool_choice": [
                        f"forces the tool {left_out_name(choice)}, which this server cannot "
                        "run: only function tools reach the model"
                    ]
                }
            )
        log_left_out(tools)
        earlier: list[ChatMessageIn] = []
        if attrs.get("previous_response_id"):
            if "previous_messages" not in self.context:
                raise serializers.ValidationError(
                    {"previous_response_id": "is not available here: nothing is stored"}
                )
            earlier = list(self.context["previous_messages"])
        origins: list[int] = []
        try:
            turns = to_messages(attrs["input"], earlier, origins)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"input": exc.detail}) from exc
        attrs["conversation"] = [*earlier, *turns]
        instructions = attrs.get("instructions")
        system: list[ChatMessageIn] = (
            [{"role": "system", "content": instructions}] if instructions else []
        )
        self.chat = ChatCompletionSerializer(
            data=self._chat_body(attrs, [*system, *attrs["conversation"]])
        )
        if not self.chat.is_valid():
            param, message = first_error(self.chat.errors)
            # Which request field each chat message and tool came from, to name it.
            sources = [
                *(["instructions"] * len(system)),
                *(["previous_response_id"] * len(earlier)),
                *(f"input.{i}" for i in origins),
            ]
            tool_paths = [f"tools.{path}" for path in tools.paths]
            named = responses_param(_source_of(param, "messages", sources))
            raise serializers.ValidationError(
                {_source_of(named, "tools", tool_paths, inner=".function") or named: [message]}
            )
        return attrs

    @staticmethod
    def _chat_body(attrs: ResponseRequest, messages: list[ChatMessageIn]) -> ChatRequest:
        """The chat request this one is: its body as ``ChatCompletionSerializer`` validates
        it (so that chat's checks name the fields they came from)."""
        body: ChatRequest = {"model": attrs["model"], "messages": messages}
        if attrs.get("temperature") is not None:
            body["temperature"] = attrs.get("temperature")
        if attrs.get("top_p") is not None:
            body["top_p"] = attrs.get("top_p")
        if attrs.get("user") is not None:
            body["user"] = attrs["user"]
        if attrs.get("parallel_tool_calls") is not None:
            body["parallel_tool_calls"] = attrs.get("parallel_tool_calls")
        if attrs.get("max_output_tokens"):
            body["max_completion_tokens"] = attrs.get("max_output_tokens")
        effort = (attrs.get("reasoning") or {}).get("effort")
        if effort is not None:
            body["reasoning_effort"] = effort
        tools = attrs.get("tools")
        if tools is not None and tools.functions:
            body["tools"] = [
                {"type": "function", "function": _chat_function(tool)} for tool in tools.functions
            ]
        choice = attrs.get("tool_choice")
        if isinstance(choice, dict):
            name = choice.get("name")
            body["tool_choice"] = {
                "type": "function",
                "function": {"name": name if isinstance(name, str) else ""},
            }
        elif isinstance(choice, str) and choice in _PLAIN_CHOICES:
            body["tool_choice"] = _PLAIN_CHOICES[choice]
        fmt = (attrs.get("text") or {}).get("format")
        if fmt and fmt["type"] == "json_schema":
            schema: JsonSchemaIn = {"schema": fmt.get("schema", {})}
            if "name" in fmt:
                schema["name"] = fmt["name"]
            if "description" in fmt:
                schema["description"] = fmt["description"]
            if "strict" in fmt:
                schema["strict"] = fmt["strict"]
            body["response_format"] = {"type": "json_schema", "json_schema": schema}
        elif fmt:
            body["response_format"] = {"type": fmt["type"]}
        return body

    def choice_count(self) -> int:
        return 1

    def payload_for(self, record: ModelRecord) -> GenerationPayload:
        """The payload for ``record``; raises ApiError when the request asks it for what it
        cannot do (reasoning, of a model that does not reason)."""
        try:
            self.chat.check_model(record)
        except ApiError as exc:
            exc.param = responses_param(exc.param) if exc.param else exc.param
            raise
        return self.to_payload(record.default_options)

    def to_payload(self, defaults: ModelOptions) -> GenerationPayload:
        payload = self.chat.to_payload(defaults)
        response_format = payload.options.get("response_format")
        if response_format is None:
            return payload
        # A schema error names the Responses API's field, not chat's.
        response_format = {**response_format, "param": "text.format.schema"}
        return replace(payload, options={**payload.options, "response_format": response_format})

    def echo(self, payload: GenerationPayload) -> Echo:
        """The request's fields a response object repeats, as the request set them (or, for
        sampling, as ``payload`` will sample)."""
        data: ResponseRequest = self.validated_data
        asked: TextFormatIn = (data.get("text") or {}).get("format") or {"type": "text"}
        fmt = asked.copy()
        return {
            "instructions": data.get("instructions"),
            "max_output_tokens": data.get("max_output_tokens"),
            "metadata": data.get("metadata") or {},
            "parallel_tool_calls": data.get("parallel_tool_calls") is not False,
            "previous_response_id": data.get("previous_response_id"),
            "reasoning": self._reasoning_echo(),
            "store": self.stored,
            "temperature": payload.options.get("temperature"),
            "text": {
                "format": fmt,
                "verbosity": (data.get("text") or {}).get("verbosity") or "medium",
            },
            "tool_choice": data.get("tool_choice") or "auto",
            "tools": self.tool_set.echoed,
            "top_p": payload.options.get("top_p"),
            "user": data.get("user"),
        }

    def _reasoning_echo(self) -> ReasoningEcho | None:
        asked = self.validated_data.get("reasoning")
        if not asked:
            return None
        return {"effort": asked.get("effort"), "summary": asked.get("summary")}

    @property
    def tool_set(self) -> ToolSet:
        return self.validated_data.get("tools") or ToolSet()

    @property
    def stored(self) -> bool:
        return self.validated_data.get("store") is not False

    @property
    def streamed(self) -> bool:
        return bool(self.validated_data.get("stream"))


def _source_of(param: str | None, field: str, sources: list[str], inner: str = "") -> str | None:
    """A chat error's ``param`` under ``field`` (``messages.3.content``) with the chat item
    replaced by the request field it came from (``input.1.content``). ``inner`` is a level
    of chat's that the request does not have (a tool's ``function``)."""
    if param is None or not param.startswith(f"{field}."):
        return param
    index, _, rest = param[len(field) + 1 :].partition(".")
    if not index.isdigit() or int(index) >= len(sources):
        return param
    rest = "." + rest if rest else ""
    return sources[int(index)] + rest.removeprefix(inner)


def responses_param(param: str | None) -> str:
    """A chat request's field as the Responses request names it."""
    if param is None:
        return "non_field_errors"
    for chat, responses in CHAT_PARAMS:
        if param.startswith(chat):
            return responses + param[len(chat) :]
    return param


_PLAIN_CHOICES: dict[str, ToolChoice] = {"auto": "auto", "none": "none", "required": "required"}


def _chat_function(tool: FunctionTool) -> FunctionIn:
    """A function tool as chat's ``function`` (its fields that are set)."""
    function: FunctionIn = {"name": tool["name"]}
    description = tool.get("description")
    if description is not None:
        function["description"] = description
    parameters = tool.get("parameters")
    if parameters is not None:
        function["parameters"] = parameters
    strict = tool.get("strict")
    if strict is not None:
        function["strict"] = strict
    return function
