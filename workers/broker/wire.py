"""The wire contract between web and worker: task names, task payloads, and the events on a
request's stream. Both processes use these types; neither writes the JSON by hand.

Tasks are sent by name (``send_task``), so the web process never imports the worker's task
module, and with it llama.cpp. A task's arguments are JSON: ``(request_id, spec, payload)``
for generation and embeddings, where ``spec`` is a ``ModelSpec`` and ``payload`` a
``GenerationPayload`` or ``EmbeddingsPayload``, each as ``to_json()`` gives it. A batch line
task carries the line's id alone: the line's row is the record of its request and its result,
and the worker makes the line's payload from it as web would (``workers.worker.batch``).

Each request has a Redis stream (``keys.request_stream``); an entry holds one event in its
field ``e``, as ``encode`` writes it and ``decode`` reads it back:

- ``Start``: a worker took the request (its name and its process's instance id). Web watches
  that instance's heartbeat from then on.
- ``Delta``: generated text, how many tokens it holds, and (only when the request asked) one
  logprob entry per token, ``{"token", "logprob", "bytes", "top_logprobs"}``; for a model that
  reasons apart, the reasoning's text comes in ``thinking`` instead of ``text``.
- ``ToolDelta``: a forced tool call as it is written: first its ``id`` and ``name``, then the
  fragments of its arguments' JSON.
- ``Done``: the end: ``finish_reason`` (``stop``, ``length``, ``cancelled``, ``tool_calls``,
  for an Ollama request that only loads or unloads the model, ``load`` or ``unload``, and for
  one that only counts its prompt's tokens, ``count_tokens``), ``usage``, ``timings`` in
  nanoseconds, the ``tool_calls`` parsed from the answer (a call cut short by the token limit,
  with ``finish_reason`` ``length``, keeps the JSON written of its arguments in
  ``arguments_text``), and the ``stop_sequence`` (one of the request's ``stop`` strings) that
  ended it, when one did.
- ``Embeddings``: the result of an embedding request (``data``, ``usage``, ``timings``).
- ``Error``: the request failed (``status``, ``message``, ``error_type``, ``code``,
  ``param``).

``Start`` comes first; exactly one of ``Done``, ``Embeddings`` or ``Error`` comes last.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

GENERATE = "herd.generate"
EMBED = "herd.embed"
BATCH_LINE = "herd.batch_line"
EXPIRE_BATCHES = "herd.expire_batches"
REAP_DEAD_WORKERS = "herd.reap_dead_workers"
PULL = "herd.pull"
QUANTIZE = "herd.quantize"
RESUME_ORPHANED_PULLS = "herd.resume_orphaned_pulls"

# The ``GenerationPayload.action`` that counts a prompt's tokens, and the ``Done`` that answers.
COUNT_TOKENS = "count_tokens"

# A request's events are read within seconds; the stream lingers a while for late readers and
# then goes by itself.
STREAM_TTL_SECONDS = 600

JsonObject = dict[str, Any]


class WireError(ValueError):
    """A message that does not follow this contract."""


# Task payloads.


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """What a worker needs to run a model (``ModelRecord.to_spec``): tasks carry it, so a
    worker never reads the database on the request path. ``num_ctx`` is the context a request
    asked for, when it did."""

    id: int
    name: str
    path: str
    sha256: str = ""
    # The vision projector (an mmproj GGUF) the model reads images with; empty: none.
    projector: str = ""
    context_length: int = 0
    chat_template: str = ""
    system_prompt: str = ""
    default_options: JsonObject = field(default_factory=dict)
    # The opening and closing tag of the model's reasoning block; empty: it has none.
    reasoning_tags: list[str] = field(default_factory=list)
    # Messages every chat starts with (a Modelfile's MESSAGE lines).
    messages: list[JsonObject] = field(default_factory=list)
    modified_at: str = ""
    pinned_to: list[str] = field(default_factory=list)
    num_ctx: int | None = None

    def to_json(self) -> JsonObject:
        data: JsonObject = {
            "id": self.id,
            "name": self.name,
            "path": self.path,
            "sha256": self.sha256,
            "projector": self.projector,
            "context_length": self.context_length,
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            "default_options": self.default_options,
            "reasoning_tags": self.reasoning_tags,
            "messages": self.messages,
            "modified_at": self.modified_at,
            "pinned_to": self.pinned_to,
        }
        if self.num_ctx is not None:
            data["num_ctx"] = self.num_ctx
        return data

    @classmethod
    def from_json(cls, data: JsonObject) -> ModelSpec:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class _QueuedRequest:
    """What every request payload carries: how it queues and how long its model stays."""

    lane: str = "interactive"  # or "batch"
    keep_alive: float | None = None  # seconds; None: HERD_KEEP_ALIVE; negative: forever
    num_ctx: int | None = None
    # Fair turns (``workers.broker.fairness``): who asked, and the set its turn waits in.
    sharer: str | None = None
    waiting_set: str | None = None

    @property
    def is_batch(self) -> bool:
        return self.lane == "batch"


@dataclass(frozen=True, slots=True)
class GenerationPayload(_QueuedRequest):
    """One chat (``messages``) or completion (``prompt``, or its token ids ``prompt_tokens``)
    request, an Ollama request that only loads or unloads its model (``action``), or one that
    only renders and tokenizes its prompt and answers the count (``action`` ``count_tokens``:
    ``Done.usage.prompt_tokens``).
    ``options`` holds the sampling options under ``workers.engine.generation.SamplingOptions``'
    names. A completion may ask for the prompt ahead of the answer (``echo``) and for the
    answer to fill the gap before ``suffix`` (the model's fill-in-the-middle tokens).
    A chat with images holds a ``{"type": "image"}`` content part where each one goes, and
    the images themselves in ``images``, in the same order, base64-encoded (PNG, JPEG, GIF:
    the web checked them)."""

    messages: list[JsonObject] | None = None
    images: list[str] | None = None
    prompt: str | None = None
    prompt_tokens: list[int] | None = None
    echo: bool = False
    suffix: str | None = None
    options: JsonObject = field(default_factory=dict)
    tools: list[JsonObject] | None = None
    tool_choice: Any = None
    action: str | None = None  # "load", "unload" or COUNT_TOKENS
    # Cut a prompt longer than the context down to fit (workers.engine.truncation).
    truncate: bool = False
    # Further variables for the chat template: ``suffix``, ``enable_thinking``,
    # ``reasoning_effort``.
    template_variables: JsonObject | None = None
    # Answer the model's reasoning block apart, as ``Delta.thinking`` (a chat, or Ollama's
    # generate); a plain completion keeps the text as the model wrote it.
    separate_reasoning: bool = False

    def to_json(self) -> JsonObject:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: JsonObject) -> GenerationPayload:
        return _build(cls, data)


@dataclass(frozen=True, slots=True)
class EmbeddingsPayload(_QueuedRequest):
    """The texts of one embedding request, each a string or a list of token ids. With a
    ``query``, a rerank request on a reranker model: ``input`` holds the documents (strings)
    and the ``Embeddings`` event answers one relevance score per document, in their order."""

    input: list[str | list[int]] = field(default_factory=list)
    normalize: bool = True
    truncate: bool = True
    encoding_format: str = "float"  # or "base64"
    query: str | None = None

    def to_json(self) -> JsonObject:
        return _to_json(self)

    @classmethod
    def from_json(cls, data: JsonObject) -> EmbeddingsPayload:
        return _build(cls, data)


Payload = GenerationPayload | EmbeddingsPayload


# Stream events.


@dataclass(frozen=True, slots=True)
class Start:
    type: ClassVar[str] = "start"
    worker: str
    instance: str


@dataclass(frozen=True, slots=True)
class Delta:
    """Generated text: the answer's (``text``) or, for a model that reasons apart, its
    reasoning's (``thinking``); a delta holds one of them."""

    type: ClassVar[str] = "delta"
    text: str
    tokens: int
    logprobs: list[JsonObject] | None = None
    thinking: str = ""

    def merged(self, later: Delta) -> Delta | None:
        """This delta and the one after it as one; None when one is reasoning and the other
        answer, so that each delta's ``tokens`` count one side (the reasoning tokens a usage
        reports)."""
        if bool(self.thinking) != bool(later.thinking) or bool(self.text) != bool(later.text):
            return None
        logprobs = None
        if self.logprobs is not None or later.logprobs is not None:
            logprobs = [*(self.logprobs or []), *(later.logprobs or [])]
        return Delta(
            self.text + later.text,
            self.tokens + later.tokens,
            logprobs,
            self.thinking + later.thinking,
        )


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Of the prompt tokens, those found in the KV cache rather than decoded.
    cached_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True, slots=True)
class Timings:
    """Nanoseconds: loading the model, reading the prompt, generating, and all of it."""

    load_ns: int = 0
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    total_ns: int = 0


@dataclass(frozen=True, slots=True)
class ToolDelta:
    """A forced tool call as it is written: the first names it (``id``, ``name``, no
    arguments yet), the next ones carry the following fragments of its arguments' JSON."""

    type: ClassVar[str] = "tool_delta"
    index: int
    arguments: str
    id: str | None = None
    name: str | None = None

    def merged(self, later: ToolDelta) -> ToolDelta | None:
        """This delta and the one after it as one, when both add arguments to one call (the
        delta naming it stays apart, as OpenAI's first one does)."""
        if self.id is not None or later.id is not None or self.index != later.index:
            return None
        return ToolDelta(self.index, self.arguments + later.arguments)


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: Any  # the call's arguments, parsed from the JSON the model wrote
    # A call cut short by the token limit: the JSON written of its arguments (``arguments``
    # is what of it could be read).
    arguments_text: str | None = None

    @property
    def partial(self) -> bool:
        return self.arguments_text is not None

    def to_json(self) -> JsonObject:
        data: JsonObject = {"id": self.id, "name": self.name, "arguments": self.arguments}
        if self.arguments_text is not None:
            data["arguments_text"] = self.arguments_text
        return data


@dataclass(frozen=True, slots=True)
class Done:
    type: ClassVar[str] = "done"
    finish_reason: str
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)
    tool_calls: list[ToolCall] | None = None
    # The request's stop string that ended the answer, when one did (``finish_reason``
    # ``stop`` says only that it stopped: the end of its turn, or one of these).
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class Embeddings:
    type: ClassVar[str] = "embeddings"
    data: list[Any]  # one vector per input: a list of floats, or base64 text
    usage: Usage = field(default_factory=Usage)
    timings: Timings = field(default_factory=Timings)


@dataclass(frozen=True, slots=True)
class Error:
    type: ClassVar[str] = "error"
    message: str
    status: int = 500
    error_type: str = "server_error"
    code: str | None = None
    param: str | None = None


Event = Start | Delta | ToolDelta | Done | Embeddings | Error
FinalEvent = Done | Embeddings | Error
FINAL_EVENTS = (Done, Embeddings, Error)


def error_event(
    message: str,
    *,
    status: int = 500,
    type_: str = "server_error",
    code: str | None = None,
    param: str | None = None,
) -> Error:
    return Error(message, status=status, error_type=type_, code=code, param=param)


def event_to_json(event: Event) -> JsonObject:
    """The event as the JSON object its stream entry holds."""
    if isinstance(event, Delta):  # the one sent per token: built by hand, no recursion
        data: JsonObject = {"type": "delta", "text": event.text, "tokens": event.tokens}
        if event.logprobs is not None:
            data["logprobs"] = event.logprobs
        if event.thinking:
            data["thinking"] = event.thinking
        return data
    if isinstance(event, Start):
        return {"type": "start", "worker": event.worker, "instance": event.instance}
    if isinstance(event, ToolDelta):
        data = {"type": "tool_delta", "index": event.index, "arguments": event.arguments}
        if event.id is not None:
            data.update(id=event.id, name=event.name)
        return data
    if isinstance(event, Done):
        data = {
            "type": "done",
            "finish_reason": event.finish_reason,
            "usage": _usage_json(event.usage),
            "timings": _timings_json(event.timings),
        }
        if event.tool_calls:
            data["tool_calls"] = [call.to_json() for call in event.tool_calls]
        if event.stop_sequence is not None:
            data["stop_sequence"] = event.stop_sequence
        return data
    if isinstance(event, Embeddings):
        return {
            "type": "embeddings",
            "data": event.data,
            "usage": {
                "prompt_tokens": event.usage.prompt_tokens,
                "total_tokens": event.usage.total_tokens,
            },
            "timings": {"load_ns": event.timings.load_ns, "total_ns": event.timings.total_ns},
        }
    return {
        "type": "error",
        "status": event.status,
        "message": event.message,
        "error_type": event.error_type,
        "code": event.code,
        "param": event.param,
    }


def event_from_json(data: JsonObject) -> Event:
    """The event a stream entry's JSON object holds; raises WireError for anything else."""
    try:
        kind = data["type"]
        if kind == "delta":
            return Delta(
                data["text"], int(data["tokens"]), data.get("logprobs"), data.get("thinking", "")
            )
        if kind == "start":
            return Start(data["worker"], data["instance"])
        if kind == "tool_delta":
            return ToolDelta(
                int(data["index"]), data["arguments"], data.get("id"), data.get("name")
            )
        if kind == "done":
            calls = data.get("tool_calls")
            return Done(
                data["finish_reason"],
                _usage(data.get("usage") or {}),
                _timings(data.get("timings") or {}),
                [
                    ToolCall(c["id"], c["name"], c["arguments"], c.get("arguments_text"))
                    for c in calls
                ]
                if calls
                else None,
                data.get("stop_sequence"),
            )
        if kind == "embeddings":
            return Embeddings(
                data["data"], _usage(data.get("usage") or {}), _timings(data.get("timings") or {})
            )
        if kind == "error":
            return Error(
                data["message"],
                status=int(data.get("status", 500)),
                error_type=data.get("error_type", "server_error"),
                code=data.get("code"),
                param=data.get("param"),
            )
    except (KeyError, TypeError, ValueError) as exc:
        raise WireError(f"malformed {data.get('type')!r} event: {exc}") from exc
    raise WireError(f"unknown event type {kind!r}")


def encode(event: Event) -> str:
    """The event as its stream entry's text."""
    return json.dumps(event_to_json(event))


def decode(raw: bytes | str) -> Event:
    """The event a stream entry's text holds."""
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise WireError(f"an event that is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise WireError("an event that is not a JSON object")
    return event_from_json(data)


def _usage_json(usage: Usage) -> JsonObject:
    data = {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens}
    if usage.cached_tokens:
        data["cached_tokens"] = usage.cached_tokens
    return data


def _timings_json(timings: Timings) -> JsonObject:
    return {
        "load_ns": timings.load_ns,
        "prompt_eval_ns": timings.prompt_eval_ns,
        "eval_ns": timings.eval_ns,
        "total_ns": timings.total_ns,
    }


def _usage(data: JsonObject) -> Usage:
    return Usage(
        int(data.get("prompt_tokens", 0)),
        int(data.get("completion_tokens", 0)),
        int(data.get("cached_tokens", 0)),
    )


def _timings(data: JsonObject) -> Timings:
    return Timings(
        int(data.get("load_ns", 0)),
        int(data.get("prompt_eval_ns", 0)),
        int(data.get("eval_ns", 0)),
        int(data.get("total_ns", 0)),
    )


def _to_json(payload: Any) -> JsonObject:
    """A payload's fields, leaving out those at their defaults: the JSON stays as small as the
    request, and ``from_json`` gives them back."""
    data = {}
    for item in dataclasses.fields(payload):
        value = getattr(payload, item.name)
        if item.default is not dataclasses.MISSING:
            default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory()
        else:
            default = dataclasses.MISSING
        if value != default:
            data[item.name] = value
    return data


def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(item.name for item in dataclasses.fields(cls))


def _build(cls: Any, data: JsonObject) -> Any:
    if not isinstance(data, dict):
        raise WireError(f"a {cls.__name__} must be a JSON object")
    names = set(_field_names(cls))
    unknown = set(data) - names
    if unknown:
        raise WireError(f"unknown {cls.__name__} fields: {', '.join(sorted(unknown))}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise WireError(f"malformed {cls.__name__}: {exc}") from exc
