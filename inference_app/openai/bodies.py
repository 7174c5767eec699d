"""The OpenAI bodies, as typed dictionaries: the requests as the serializers of
``inference_app.openai.serializers`` validate them, and the responses (Chat Completions,
Completions, Embeddings) as ``inference_app.openai.format`` writes them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required, TypedDict

from project.json_types import JsonObject

# Requests (validated).


class CalledFunction(TypedDict):
    name: str
    arguments: str  # JSON text


class ToolCallIn(TypedDict):
    """An assistant message's earlier call."""

    type: Literal["function"]
    function: CalledFunction
    id: NotRequired[str]


class ChatMessageIn(TypedDict):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    # A string, a list of content parts (text ones), or null.
    content: NotRequired[str | list[JsonObject] | None]
    reasoning_content: NotRequired[str | None]
    name: NotRequired[str]
    tool_call_id: NotRequired[str]
    tool_calls: NotRequired[list[ToolCallIn]]


class FunctionIn(TypedDict):
    name: str
    description: NotRequired[str]
    parameters: NotRequired[JsonObject]  # a JSON schema
    strict: NotRequired[bool | None]


class ToolIn(TypedDict):
    type: Literal["function"]
    function: FunctionIn


class NamedFunction(TypedDict):
    name: str


class NamedToolChoice(TypedDict):
    type: Literal["function"]
    function: NamedFunction


ToolChoice = Literal["auto", "none", "required"] | NamedToolChoice


class StreamOptions(TypedDict):
    include_usage: bool


class JsonSchemaIn(TypedDict):
    schema: JsonObject
    name: NotRequired[str]
    description: NotRequired[str]
    strict: NotRequired[bool | None]


class ResponseFormatIn(TypedDict):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: NotRequired[JsonSchemaIn]


class SamplingRequest(TypedDict, total=False):
    """What chat and text completions share."""

    model: Required[str]
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    top_k: int | None
    min_p: float | None
    repeat_penalty: float | None
    presence_penalty: float | None
    frequency_penalty: float | None
    seed: int | None
    stop: list[str] | None
    n: int | None
    stream: bool
    stream_options: StreamOptions | None
    user: str


class ChatRequest(SamplingRequest, total=False):
    """The body of ``/v1/chat/completions``."""

    messages: Required[list[ChatMessageIn]]
    max_completion_tokens: int | None
    response_format: ResponseFormatIn | None
    tools: list[ToolIn] | None
    tool_choice: ToolChoice | None
    parallel_tool_calls: bool | None
    logprobs: bool | None
    top_logprobs: int | None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None


class CompletionRequest(SamplingRequest, total=False):
    """The body of ``/v1/completions``: prompts, each a string or token ids."""

    prompt: Required[list[str | list[int]]]
    echo: bool | None
    suffix: str | None
    best_of: int | None


class EmbeddingRequest(TypedDict):
    """The body of ``/v1/embeddings``."""

    model: str
    input: list[str | list[int]]
    encoding_format: Literal["float", "base64"]
    dimensions: NotRequired[int | None]
    user: NotRequired[str]


# Responses.


class PromptTokensDetails(TypedDict):
    cached_tokens: int


class UsageBody(TypedDict):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails


class FunctionCallBody(TypedDict):
    name: str
    arguments: str  # JSON, as the model wrote it


class ToolCallBody(TypedDict):
    id: str
    type: Literal["function"]
    function: FunctionCallBody
    index: NotRequired[int]  # in a stream's deltas


class FunctionFragment(TypedDict):
    """A piece of a call being streamed: its first names the function."""

    arguments: str
    name: NotRequired[str | None]


class ToolCallFragment(TypedDict):
    index: int
    function: FunctionFragment
    id: NotRequired[str]
    type: NotRequired[Literal["function"]]


class ChatLogprobs(TypedDict):
    # The worker's logprob entries (``workers.broker.wire.Delta.logprobs``), as it wrote them.
    content: list[dict[str, Any]] | None
    refusal: None


class ChatMessageBody(TypedDict):
    role: Literal["assistant"]
    content: str | None
    refusal: None
    reasoning_content: NotRequired[str]
    tool_calls: NotRequired[list[ToolCallBody]]


class ChatChoice(TypedDict):
    index: int
    message: ChatMessageBody
    logprobs: ChatLogprobs | None
    finish_reason: str | None


class ChatDelta(TypedDict, total=False):
    role: Literal["assistant"]
    content: str | None
    reasoning_content: str
    tool_calls: list[ToolCallBody] | list[ToolCallFragment]


class ChatChunkChoice(TypedDict):
    index: int
    delta: ChatDelta
    logprobs: ChatLogprobs | None
    finish_reason: str | None


class ChatCompletionChunk(TypedDict):
    id: str
    object: Literal["chat.completion.chunk"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChunkChoice]
    # Present (null until the last chunk) when the client asked for usage.
    usage: NotRequired[UsageBody | None]


class ChatCompletion(TypedDict):
    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[ChatChoice]
    usage: UsageBody


class CompletionChoice(TypedDict):
    index: int
    text: str
    logprobs: None
    finish_reason: str | None


class TextCompletion(TypedDict):
    id: str
    object: Literal["text_completion"]
    created: int
    model: str
    system_fingerprint: str
    choices: list[CompletionChoice]
    usage: NotRequired[UsageBody | None]


class EmbeddingBody(TypedDict):
    object: Literal["embedding"]
    index: int
    embedding: list[float] | str  # floats, or base64 when asked


class EmbeddingUsage(TypedDict):
    prompt_tokens: int
    total_tokens: int


class EmbeddingList(TypedDict):
    object: Literal["list"]
    data: list[EmbeddingBody]
    model: str
    usage: EmbeddingUsage
