"""A completion request with several choices: ``n`` > 1, or a list of prompts on
``/v1/completions`` (``n`` choices for each prompt, numbered prompt by prompt).

Each choice is a generation of its own, enqueued on the model's lane like any request (on a
batched engine they decode side by side); the answer gathers them as one response's
``choices``, each with its ``index``. The status comes from the first event of every choice,
so a request a worker refuses (a prompt over the context) is refused as a whole; a streamed
answer interleaves the choices' chunks as they come and ends once all have ended. The usage is
the sum of the choices'. A request with one choice takes the ordinary path
(``inference_app.replies``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

from django.http import HttpRequest, JsonResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase

from accounts.usage import note_usage
from inference_app.dispatch import enqueue_generation
from inference_app.openai.format import SSE_DONE, ChatFormat, CompletionFormat
from inference_app.openai.serializers import ChatCompletionSerializer, CompletionSerializer
from inference_app.relay import RelayedEvent, RequestRelay
from inference_app.replies import WorkerError, collect_answer
from models_app.models import ModelRecord
from project.edge.context import RequestContext
from workers.broker.wire import Delta, Done, Error, GenerationPayload, Usage

Format = ChatFormat | CompletionFormat


async def respond_with_choices(
    request: HttpRequest,
    ctx: RequestContext,
    serializer: ChatCompletionSerializer | CompletionSerializer,
    format_cls: type[ChatFormat] | type[CompletionFormat],
) -> HttpResponseBase:
    """The response to a valid request whose ``choice_count()`` is more than one."""
    data = serializer.validated_data
    relays = await _enqueue(ctx, serializer)
    include_usage = bool((data.get("stream_options") or {}).get("include_usage"))
    fmt = format_cls(relays[0].request_id, data["model"], include_usage)
    prompts = serializer.prompt_count()
    streams = [relay.events() for relay in relays]
    try:
        firsts = await asyncio.gather(*(anext(events) for events in streams))
        refusal = next((e for e in firsts if isinstance(e, Error)), None)
        if refusal is not None:
            raise WorkerError(refusal)
    except BaseException:
        _cancel(relays)
        raise
    if data.get("stream"):
        response = StreamingHttpResponse(
            _stream(request, fmt, relays, streams, firsts, prompts), content_type=fmt.content_type
        )
        response["Cache-Control"] = "no-cache"
        response["X-Request-Id"] = relays[0].request_id
        return response
    try:
        results = await asyncio.gather(
            *(
                collect_answer(events, first, bool(data.get("logprobs")))
                for events, first in zip(streams, firsts, strict=True)
            )
        )
    finally:
        _cancel(relays)
    counts = _total([answer.done for answer in results], prompts)
    note_usage(request, counts)
    return JsonResponse(
        fmt.whole_of_choices(results, counts), headers={"X-Request-Id": relays[0].request_id}
    )


async def _enqueue(
    ctx: RequestContext, serializer: ChatCompletionSerializer | CompletionSerializer
) -> list[RequestRelay]:
    built: list[GenerationPayload] = []

    def builder(index: int) -> Callable[[ModelRecord], GenerationPayload]:
        def build(record: ModelRecord) -> GenerationPayload:
            if not built:
                built.extend(serializer.payloads_for(record))
            return built[index]

        return build

    model = serializer.validated_data["model"]
    relays: list[RequestRelay] = []
    try:
        for index in range(serializer.choice_count()):
            _, request_id = await enqueue_generation(ctx, model, builder(index))
            relays.append(RequestRelay(request_id))
    except BaseException:
        _cancel(relays)
        raise
    return relays


async def _stream(
    request: HttpRequest,
    fmt: Format,
    relays: list[RequestRelay],
    streams: list[AsyncIterator[RelayedEvent]],
    firsts: list[RelayedEvent],
    prompts: int,
) -> AsyncIterator[bytes]:
    merged: asyncio.Queue[tuple[int, RelayedEvent | None]] = asyncio.Queue()

    async def pump(index: int) -> None:
        await merged.put((index, firsts[index]))
        async for event in streams[index]:
            await merged.put((index, event))
        await merged.put((index, None))

    pumps = [asyncio.create_task(pump(i)) for i in range(len(relays))]
    dones: dict[int, Done] = {}
    opened: set[int] = set()
    try:
        open_choices = len(relays)
        while open_choices:
            index, event = await merged.get()
            if event is None:
                open_choices -= 1
                continue
            out = b""
            if index not in opened:
                opened.add(index)
                out += fmt.opening_chunk(index)
            if isinstance(event, Delta):
                yield out + fmt.delta_chunk(event, index)
            elif isinstance(event, Done):
                dones[index] = event
                yield out + fmt.finish_chunks(event, index)
            elif isinstance(event, Error):
                yield out + fmt.stream_error(WorkerError(event))
                return
            elif out:  # a ToolDelta: its choice's calls go out whole in its finish chunks
                yield out
        counts = _total([dones[i] for i in sorted(dones)], prompts)
        note_usage(request, counts)
        yield (fmt.usage_chunk(counts) if fmt.include_usage else b"") + SSE_DONE
    finally:
        for task in pumps:
            task.cancel()
        _cancel(relays)


def _total(dones: list[Done], prompts: int) -> Usage:
    """The request's usage: each prompt read once (its choices share it), every choice's
    completion tokens."""
    per_prompt = len(dones) // max(prompts, 1) or 1
    prompt_tokens = sum(d.usage.prompt_tokens for d in dones[::per_prompt])
    return Usage(prompt_tokens, sum(d.usage.completion_tokens for d in dones))


def _cancel(relays: list[RequestRelay]) -> None:
    for relay in relays:
        if not relay.finished:
            relay.cancel_now()
