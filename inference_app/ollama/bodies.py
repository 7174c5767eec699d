"""The Ollama API's generation responses (``/api/chat``, ``/api/generate``) as typed
dictionaries, built in ``inference_app.ollama.format``."""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

from models_app.bodies import OllamaDetails
from project.json_types import JsonObject, JsonValue


class CalledFunction(TypedDict):
    index: int
    name: str
    arguments: JsonValue  # parsed: Ollama gives the arguments as an object


class ToolCallOut(TypedDict):
    id: str
    function: CalledFunction


class MessageOut(TypedDict):
    role: Literal["assistant"]
    content: str
    thinking: NotRequired[str]
    tool_calls: NotRequired[list[ToolCallOut]]


class TokenLogprob(TypedDict):
    token: str
    logprob: float
    bytes: list[int] | None


class LogprobOut(TokenLogprob):
    top_logprobs: list[TokenLogprob]


class GenerationObject(TypedDict):
    """One line of a stream, or the whole answer. ``/api/generate`` answers in ``response``
    (and ``thinking``), ``/api/chat`` in ``message``. Fields are written in Ollama's order,
    so the end's fields come after the answer's and are not required up front."""

    model: str
    created_at: str
    response: NotRequired[str]
    thinking: NotRequired[str]
    message: NotRequired[MessageOut]
    logprobs: NotRequired[list[LogprobOut]]
    done: NotRequired[bool]
    done_reason: NotRequired[str]
    total_duration: NotRequired[int]
    load_duration: NotRequired[int]
    prompt_eval_count: NotRequired[int]
    prompt_eval_duration: NotRequired[int]
    eval_count: NotRequired[int]
    eval_duration: NotRequired[int]


class ShowBody(TypedDict):
    """``/api/show``'s answer."""

    license: str
    modelfile: str
    parameters: str
    template: str
    details: OllamaDetails
    model_info: JsonObject
    projector_info: NotRequired[JsonObject]
    capabilities: list[str]
    modified_at: str
    system: NotRequired[str]
    messages: NotRequired[list[JsonObject]]
