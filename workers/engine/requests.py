"""What the engine takes: one typed request per generation or embedding, and the model's own
profile, given once when the engine is built.

An ``EngineRequest`` says everything a generation needs from its caller: the prompt (text,
token ids, or chat messages the engine renders with the model's template), the sampling
options, tools, reasoning, truncation, the lane and fair-turn key it queues under, and a
``Cancellation`` the engine reads between steps and between prompt pieces. What belongs to
the model rather than the request (chat template, system prompt, the record's MESSAGE lines,
reasoning tags) is the ``ModelProfile``. The engine answers with the events of
``workers.engine.events``; a request it cannot run is answered with ``Rejected``, not raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The lanes a request queues in: interactive requests run before batch lines.
INTERACTIVE = 0
BATCH = 1


@dataclass(frozen=True)
class SamplingOptions:
    """The knobs a request may turn. Defaults follow the OpenAI API (no penalties); the Ollama
    API passes Ollama's own defaults explicitly. ``response_format`` (``{"type": "text" |
    "json_object" | "json_schema", "schema"}``) becomes the grammar that shapes the answer."""

    max_tokens: int = 2048
    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.9
    min_p: float = 0.0
    repeat_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    response_format: dict[str, Any] | None = None
    logprobs: bool = False
    top_logprobs: int = 0

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SamplingOptions:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and v is not None}
        if "stop" in known:
            known["stop"] = tuple(known["stop"])
        return cls(**known)


class Cancellation:
    """A request's cancel flag: its caller sets it (``cancel``), the engine reads it
    (``cancelled``) before the request starts, between prompt pieces and between tokens.

    ``check_at_start`` is an outside look the engine takes once, as the request leaves the
    queue (a client that went away while it waited); the flag alone is read after that, so the
    token loop never pays for the look."""

    def __init__(self, check_at_start: Callable[[], bool] | None = None) -> None:
        self._flag = threading.Event()
        self._check_at_start = check_at_start

    def cancel(self) -> None:
        self._flag.set()

    def cancelled(self) -> bool:
        return self._flag.is_set()

    def cancelled_at_start(self) -> bool:
        if self._check_at_start is not None and self._check_at_start():
            self._flag.set()
        return self._flag.is_set()


@dataclass(frozen=True)
class ModelProfile:
    """What a model brings to every request: its chat template, its default system prompt,
    the messages every chat starts with (a Modelfile's MESSAGE lines), and the opening and
    closing tag of its reasoning block (empty: it has none)."""

    chat_template: str = ""
    system_prompt: str = ""
    messages: tuple[dict[str, Any], ...] = ()
    reasoning_tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class EngineRequest:
    """One generation. The prompt is one of ``messages`` (a chat, rendered with the model's
    template and ``template_variables``), ``prompt_tokens`` or ``prompt`` (a completion);
    ``suffix`` asks for the text between the prompt and it (fill-in-the-middle).

    ``tools`` and ``tool_choice`` are OpenAI's (``workers.engine.tools``); ``separate_reasoning``
    answers a reasoning block as ``ThinkingPiece`` events; ``truncate`` cuts a prompt longer
    than the context down to leave room for the answer; ``echo`` gives the prompt back ahead of
    the answer; ``count_tokens_only`` renders and tokenizes the prompt and answers its length.
    ``priority`` is the lane (``INTERACTIVE`` or ``BATCH``), ``sharer`` the key whose requests
    take fair turns with other keys' (``workers.engine.jobs``). ``images`` are the encoded
    images (PNG, JPEG, GIF) of the messages' ``{"type": "image"}`` content parts, in their
    order; the model's projector reads them."""

    prompt: str | None = None
    prompt_tokens: tuple[int, ...] | None = None
    messages: tuple[dict[str, Any], ...] | None = None
    images: tuple[bytes, ...] = ()
    suffix: str | None = None
    template_variables: Mapping[str, Any] | None = None
    sampling: SamplingOptions = field(default_factory=SamplingOptions)
    tools: tuple[dict[str, Any], ...] | None = None
    tool_choice: Any = None
    separate_reasoning: bool = False
    truncate: bool = False
    echo: bool = False
    count_tokens_only: bool = False
    priority: int = INTERACTIVE
    sharer: str | None = None
    cancel: Cancellation = field(default_factory=Cancellation, compare=False)


@dataclass(frozen=True)
class EmbeddingRequest:
    """Pooled embeddings of each input (text, or token ids). ``truncate`` False refuses an
    input longer than the embedding context instead of cutting it."""

    inputs: tuple[str | tuple[int, ...], ...]
    normalize: bool = True
    truncate: bool = True
    priority: int = INTERACTIVE
    sharer: str | None = None
    cancel: Cancellation = field(default_factory=Cancellation, compare=False)


@dataclass(frozen=True)
class RerankRequest:
    """How relevant each of ``documents`` is to ``query``, as a reranker model (rank pooling,
    a classifier head) scores each pair. A pair longer than the ranking context is cut to
    fit."""

    query: str
    documents: tuple[str, ...]
    priority: int = INTERACTIVE
    sharer: str | None = None
    cancel: Cancellation = field(default_factory=Cancellation, compare=False)


AnyRequest = EngineRequest | EmbeddingRequest | RerankRequest
