"""What the engine gives back for a request: typed events, in order, ending with one final
event (``Finished``, ``Embedded`` or ``Rejected``).

A generation streams ``TextPiece`` (the answer), ``ThinkingPiece`` (a reasoning block, when
the request asked for it apart) and ``ToolCallPiece`` (a forced call as it is written), then
``Finished`` with the finish reason, usage, timings, the calls read from the answer and the
stop string that ended it. A request the model cannot run (a prompt over the context, a
template that refuses the messages, a schema llama.cpp cannot turn into a grammar) gets one
``Rejected`` instead; a failure of the engine itself is raised to the caller, not an event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from workers.engine.logprobs import LogprobEntry

# ``Finished.finish_reason`` of a request that only counted its prompt's tokens.
COUNTED = "count_tokens"


@dataclass(frozen=True, slots=True)
class TextPiece:
    """Answer text, whole UTF-8 characters; ``tokens`` sampled tokens (their ``logprobs``
    entries when the request asked) went into it, or into text held back before it."""

    text: str
    tokens: int
    logprobs: list[LogprobEntry] | None = None


@dataclass(frozen=True, slots=True)
class ThinkingPiece:
    """Text of the model's reasoning block (``EngineRequest.separate_reasoning``)."""

    text: str
    tokens: int
    logprobs: list[LogprobEntry] | None = None


@dataclass(frozen=True, slots=True)
class ToolCallPiece:
    """A forced call as it is written: the first piece names it (``id``, ``name``, no
    arguments yet), the next ones carry the following fragments of its arguments' JSON."""

    index: int
    arguments: str
    id: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A call read from the answer. ``arguments_text``: set for a call cut short by the token
    limit, the JSON written of its arguments (``arguments`` is what of it could be read)."""

    id: str
    name: str
    arguments: Any
    arguments_text: str | None = None


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    # Of the prompt tokens, those found in the KV cache rather than decoded.
    cached_tokens: int = 0


@dataclass(frozen=True, slots=True)
class Finished:
    """The end of a generation. ``finish_reason``: ``stop``, ``length``, ``tool_calls``,
    ``cancelled`` or ``COUNTED``; ``prompt_eval_ns`` and ``eval_ns``: reading the prompt and
    generating."""

    finish_reason: str
    usage: Usage = field(default_factory=Usage)
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    tool_calls: tuple[ToolCall, ...] = ()
    stop_sequence: str | None = None


@dataclass(frozen=True, slots=True)
class Embedded:
    """The end of an embedding request: one vector per input, and the tokens they held."""

    vectors: list[list[float]]
    prompt_tokens: int


@dataclass(frozen=True, slots=True)
class Rejected:
    """The request cannot run on this model: a client error, with the request field at fault
    (``param``) and a code (``context_length_exceeded``, ``invalid_schema``...)."""

    message: str
    code: str
    param: str | None


@dataclass(frozen=True, slots=True)
class Ranked:
    """The end of a rerank request: each document's relevance score, in the order given, and
    the tokens of every (query, document) pair together."""

    scores: list[float]
    prompt_tokens: int


EngineEvent = TextPiece | ThinkingPiece | ToolCallPiece | Finished | Embedded | Ranked | Rejected
FINAL = (Finished, Embedded, Ranked, Rejected)
