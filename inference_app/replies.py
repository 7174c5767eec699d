"""One loop from a request's events to its response, for every generation endpoint.

A view enqueues the request and hands its ``RequestRelay`` and a ``ResponseFormat`` (how its
API writes deltas, the end and errors) to ``respond``. The status is chosen from the first
event, so an error the worker finds before generating (a prompt over the context) still gets
its proper status; a streamed response then relays each event as its API writes it, and a
client that leaves cancels the generation (the ``finally``), so the engine stops within a
token. The token counts of the ``Done`` event go to the usage middleware
(``accounts.usage.note_usage``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from accounts.usage import note_usage
from inference_app.relay import RelayedEvent, RequestRelay
from project.errors import ApiError
from workers.broker.wire import Delta, Done, Embeddings, Error, ToolDelta

FinalAnswer = TypeVar("FinalAnswer", Embeddings, Done)


@dataclass(frozen=True)
class Answer:
    """A whole answer: its text, the reasoning before it (a model that reasons apart), its
    ``Done`` event and, when asked for, its logprob entries."""

    text: str
    done: Done
    logprobs: list[dict[str, Any]] | None = None
    thinking: str = ""
    reasoning_tokens: int = 0  # of the completion tokens, those of the reasoning

    @classmethod
    def from_events(cls, deltas: Iterable[Delta], done: Done) -> Answer:
        collected = list(deltas)
        return cls(
            "".join(d.text for d in collected),
            done,
            None,
            "".join(d.thinking for d in collected),
            sum(d.tokens for d in collected if d.thinking and not d.text),
        )


class ResponseFormat(Protocol):
    """How one API writes one request's answer."""

    content_type: str

    def stream_delta(self, delta: Delta, first: bool) -> bytes: ...

    def stream_tool_delta(self, delta: ToolDelta, first: bool) -> bytes: ...

    def stream_done(self, done: Done, first: bool) -> bytes: ...

    def stream_error(self, error: ApiError) -> bytes: ...

    # The body as plain JSON: a batch line's result is written as any other JSON.
    def whole(self, answer: Answer) -> dict[str, Any]: ...


class WorkerError(ApiError):
    """An ``Error`` event, as the API answers it."""

    def __init__(self, event: Error) -> None:
        super().__init__(
            event.message,
            status=event.status,
            code=event.code,
            error_type=event.error_type,
            param=event.param,
        )
        self.code = event.code  # None too: the worker said there is none


async def respond(
    request: HttpRequest,
    relay: RequestRelay,
    fmt: ResponseFormat,
    *,
    stream: bool,
    logprobs: bool = False,
) -> HttpResponseBase:
    """The response to a generation request whose events ``relay`` reads."""
    events = relay.events()
    try:
        first = await anext(events)
        if isinstance(first, Error):
            raise WorkerError(first)
        if stream:
            response = StreamingHttpResponse(
                _stream(request, relay, events, first, fmt), content_type=fmt.content_type
            )
            response["Cache-Control"] = "no-cache"
            response["X-Request-Id"] = relay.request_id
            return response
        answer = await collect_answer(events, first, logprobs)
        note_usage(request, answer.done.usage)
        body = fmt.whole(answer)
        return JsonResponse(body, headers={"X-Request-Id": relay.request_id})
    finally:
        if not relay.finished and not stream:
            relay.cancel_now()


async def final_event(request: HttpRequest, relay: RequestRelay) -> Embeddings:
    """The ``Embeddings`` event of an embedding request; raises its error as an ApiError."""
    event = await only_event(relay, Embeddings)
    note_usage(request, event.usage)
    return event


async def only_event(relay: RequestRelay, kind: type[FinalAnswer]) -> FinalAnswer:
    """The one event of a request that answers with its final event alone (an embedding, a
    count of tokens), of type ``kind``; raises its error as an ApiError."""
    try:
        event: RelayedEvent = await anext(relay.events())
    finally:
        if not relay.finished:
            relay.cancel_now()
    if isinstance(event, Error):
        raise WorkerError(event)
    if not isinstance(event, kind):
        raise ApiError(f"unexpected {event.type} event", status=500, code="internal_error")
    return event


async def _stream(
    request: HttpRequest,
    relay: RequestRelay,
    events: AsyncIterator[RelayedEvent],
    first: RelayedEvent,
    fmt: ResponseFormat,
) -> AsyncIterator[bytes]:
    try:
        event, is_first = first, True
        while True:
            if isinstance(event, Delta):
                yield fmt.stream_delta(event, is_first)
            elif isinstance(event, ToolDelta):
                yield fmt.stream_tool_delta(event, is_first)
            elif isinstance(event, Done):
                note_usage(request, event.usage)
                yield fmt.stream_done(event, is_first)
                return
            elif isinstance(event, Error):
                yield fmt.stream_error(WorkerError(event))
                return
            else:
                yield fmt.stream_error(
                    ApiError(f"unexpected {event.type} event", status=500, code="internal_error")
                )
                return
            event, is_first = await anext(events), False
    finally:
        if not relay.finished:
            relay.cancel_now()


async def collect_answer(
    events: AsyncIterator[RelayedEvent], first: RelayedEvent, logprobs: bool
) -> Answer:
    """A whole answer from ``first`` and the events after it (``logprobs``: with its logprob
    entries); raises the worker's error as an ApiError."""
    deltas: list[Delta] = []
    event = first
    while isinstance(event, Delta | ToolDelta):  # the Done event holds the calls whole
        if isinstance(event, Delta):
            deltas.append(event)
        event = await anext(events)
    answer = Answer.from_events(deltas, _expect_done(event))
    if not logprobs:
        return answer
    entries = [entry for delta in deltas for entry in delta.logprobs or []]
    return dataclasses.replace(answer, logprobs=entries)


def _expect_done(event: RelayedEvent) -> Done:
    if isinstance(event, Error):
        raise WorkerError(event)
    if not isinstance(event, Done):
        raise ApiError(f"unexpected {event.type} event", status=500, code="internal_error")
    return event
