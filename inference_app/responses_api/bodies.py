"""The Responses API's items, response object and stream events as typed dictionaries.

Input items are brought to the form output items take (``inference_app.responses_api.items``),
so one set of item types serves both; ``inference_app.responses_api.format`` writes the
response object and its events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NotRequired, Required, TypedDict

from inference_app.openai.bodies import ChatMessageIn
from project.json_types import JsonObject, JsonValue

if TYPE_CHECKING:
    from inference_app.responses_api.tools import ToolSet

# Content parts.


class InputTextPart(TypedDict):
    type: Literal["input_text"]
    text: str


class OutputTextPart(TypedDict):
    type: Literal["output_text"]
    text: str
    annotations: NotRequired[list[JsonObject]]
    logprobs: NotRequired[list[JsonObject]]


TextPart = InputTextPart | OutputTextPart


class InputImagePart(TypedDict):
    """An image in a user's or system's message: a data: URL, or http(s) where the server
    fetches images (``HERD_FETCH_IMAGES``)."""

    type: Literal["input_image"]
    image_url: str


MessagePart = TextPart | InputImagePart


class ReasoningTextPart(TypedDict):
    type: Literal["reasoning_text"]
    text: str


# Requests (validated).


class FunctionTool(TypedDict):
    """A function tool as the request wrote it."""

    type: Literal["function"]
    name: str
    description: NotRequired[str | None]
    parameters: NotRequired[JsonObject | None]
    strict: NotRequired[bool | None]


class TextFormatIn(TypedDict):
    type: Literal["text", "json_object", "json_schema"]
    name: NotRequired[str]
    description: NotRequired[str]
    schema: NotRequired[JsonObject]
    strict: NotRequired[bool | None]


class TextIn(TypedDict, total=False):
    format: TextFormatIn
    verbosity: Literal["low", "medium", "high"] | None


class ReasoningIn(TypedDict, total=False):
    effort: Literal["none", "minimal", "low", "medium", "high"] | None
    summary: Literal["auto", "concise", "detailed"] | None
    generate_summary: Literal["auto", "concise", "detailed"] | None


class ResponseRequest(TypedDict, total=False):
    """The body of ``/v1/responses``, validated; ``conversation`` is the chat the request
    continues and adds (``ResponseSerializer.validate``)."""

    model: Required[str]
    input: Required[list[Item]]
    instructions: str | None
    max_output_tokens: int | None
    temperature: float | None
    top_p: float | None
    tools: ToolSet | None
    tool_choice: JsonValue
    parallel_tool_calls: bool | None
    reasoning: ReasoningIn | None
    text: TextIn | None
    metadata: dict[str, str] | None
    user: str
    store: bool | None
    previous_response_id: str | None
    stream: bool | None
    conversation: list[ChatMessageIn]


class TextEcho(TypedDict):
    format: TextFormatIn
    verbosity: str


class ReasoningEcho(TypedDict):
    effort: str | None
    summary: str | None


# Items.


class MessageItem(TypedDict):
    type: Literal["message"]
    id: str
    role: Literal["user", "system", "developer", "assistant"]
    status: str
    content: list[MessagePart]


class FunctionCallItem(TypedDict):
    type: Literal["function_call"]
    id: str
    call_id: str
    name: str
    arguments: str  # JSON text
    status: str
    namespace: NotRequired[str]  # a namespace tool's function


class FunctionCallOutputItem(TypedDict):
    type: Literal["function_call_output"]
    id: str
    call_id: str
    output: str
    status: str


class ReasoningItem(TypedDict):
    """The model's thinking. One a client sends back keeps the fields it came with."""

    type: Literal["reasoning"]
    id: str
    summary: list[JsonValue]
    status: NotRequired[str]
    content: NotRequired[list[ReasoningTextPart]]
    encrypted_content: NotRequired[str | None]


Item = MessageItem | FunctionCallItem | FunctionCallOutputItem | ReasoningItem


# The response object.


class InputTokensDetails(TypedDict):
    cached_tokens: int
    cache_write_tokens: int


class OutputTokensDetails(TypedDict):
    reasoning_tokens: int


class ResponseUsage(TypedDict):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class ResponseError(TypedDict):
    code: str
    message: str


class IncompleteDetails(TypedDict):
    reason: str


class Echo(TypedDict):
    """The request's fields a response object repeats (``ResponseSerializer.echo``)."""

    instructions: str | None
    max_output_tokens: int | None
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: NotRequired[ReasoningEcho | None]
    store: bool
    temperature: float | None
    text: TextEcho
    tool_choice: JsonValue
    tools: list[JsonObject]
    top_p: float | None
    user: str | None
    metadata: dict[str, str]


class ResponseObject(TypedDict):
    id: str
    object: Literal["response"]
    created_at: int
    status: str
    background: bool
    completed_at: int | None
    error: ResponseError | None
    incomplete_details: IncompleteDetails | None
    instructions: str | None
    max_output_tokens: int | None
    max_tool_calls: None
    model: str
    output: list[Item]
    parallel_tool_calls: bool
    previous_response_id: str | None
    reasoning: ReasoningEcho | None
    service_tier: str
    store: bool
    temperature: float | None
    text: TextEcho
    tool_choice: JsonValue
    tools: list[JsonObject]
    top_logprobs: int
    top_p: float | None
    truncation: str
    usage: ResponseUsage | None
    user: str | None
    metadata: dict[str, str]


class ItemList(TypedDict):
    """One page of a stored response's input items."""

    object: Literal["list"]
    data: list[Item]
    first_id: str
    last_id: str
    has_more: bool


# Stream events (``sequence_number`` is added as each goes out).


class ResponseEvent(TypedDict):
    type: str  # response.created, .in_progress, .completed, .incomplete, .failed
    response: ResponseObject


class ItemEvent(TypedDict):
    type: Literal["response.output_item.added", "response.output_item.done"]
    output_index: int
    item: Item


class PartEvent(TypedDict):
    type: Literal["response.content_part.added", "response.content_part.done"]
    item_id: str
    output_index: int
    content_index: int
    part: OutputTextPart | ReasoningTextPart


class TextDeltaEvent(TypedDict):
    """``response.output_text.delta`` or ``response.reasoning_text.delta``."""

    type: str
    item_id: str
    output_index: int
    content_index: int
    delta: str
    logprobs: NotRequired[list[JsonObject]]


class TextDoneEvent(TypedDict):
    """``response.output_text.done`` or ``response.reasoning_text.done``."""

    type: str
    item_id: str
    output_index: int
    content_index: int
    text: str
    logprobs: NotRequired[list[JsonObject]]


class ArgumentsDeltaEvent(TypedDict):
    type: Literal["response.function_call_arguments.delta"]
    item_id: str
    output_index: int
    delta: str


class ArgumentsDoneEvent(TypedDict):
    type: Literal["response.function_call_arguments.done"]
    item_id: str
    output_index: int
    name: str
    arguments: str


Event = (
    ResponseEvent
    | ItemEvent
    | PartEvent
    | TextDeltaEvent
    | TextDoneEvent
    | ArgumentsDeltaEvent
    | ArgumentsDoneEvent
)
