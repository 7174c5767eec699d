"""The request event stream: what a worker tells web about one request.

Each request has a Redis stream (``keys.request_stream``). Its entries carry one field,
``e``, holding a JSON object with a ``type``:

- ``start``: a worker took the request (``worker``: its name, ``instance``: its process's
  id). Web watches that instance's heartbeat from then on.
- ``delta``: generated text (``text``); ``tokens``: how many tokens it holds; ``logprobs``
  (only when the request asked): one entry per token, ``{"token", "logprob", "bytes",
  "top_logprobs"}``.
- ``done``: the end (``finish_reason``, ``usage``, ``timings`` in nanoseconds: ``load_ns``,
  ``prompt_eval_ns``, ``eval_ns``, ``total_ns``). ``finish_reason`` is ``stop``, ``length``,
  ``cancelled``, ``tool_calls`` (then ``tool_calls`` lists ``{"id", "name", "arguments"}``),
  or, for an Ollama request that only loads or unloads the model, ``load`` or ``unload``.
- ``embeddings``: the result of an embedding request (``data``, ``usage``, ``timings``).
- ``error``: the request failed (``status``, ``message``, ``type``, ``code``, ``param``).

``start`` comes first; exactly one of ``done``, ``embeddings`` or ``error`` comes last.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Iterable
from typing import Any

import redis

from workers import keys

# A request's events are read within seconds; the stream lingers a while for late readers
# and then goes by itself.
STREAM_TTL_SECONDS = 600


class EventPublisher:
    """Appends events to one request's stream. Used by a worker thread."""

    def __init__(self, client: redis.Redis, request_id: str) -> None:
        self._client = client
        self._stream = keys.request_stream(request_id)
        self._cancel = keys.cancel_flag(request_id)
        self._claim = keys.request_claim(request_id)

    def publish(self, event: dict[str, Any]) -> bool:
        """Append ``event``; returns False when the client has asked to cancel.

        Both travel in one round trip, so the check costs nothing extra per token.
        """
        pipe = self._client.pipeline(transaction=False)
        pipe.xadd(self._stream, {"e": json.dumps(event)})
        pipe.expire(self._stream, STREAM_TTL_SECONDS)
        pipe.exists(self._cancel)
        _, _, cancelled = pipe.execute()
        return not cancelled

    def cancelled(self) -> bool:
        return bool(self._client.exists(self._cancel))

    def claim(self, instance: str) -> bool:
        """True for the first delivery of this request to ask, False for any later one."""
        return bool(self._client.set(self._claim, instance, nx=True, ex=STREAM_TTL_SECONDS))


_END = object()


class BackgroundPublisher:
    """Lets the engine hand events over without waiting on Redis.

    The engine thread calls ``emit`` (a queue put, and a flag read: it returns False once the
    client has cancelled); the request's task thread runs ``pump`` and does the round trips.
    Deltas that pile up while one is in flight go out together, as one event.
    """

    def __init__(self, publisher: EventPublisher) -> None:
        self._publisher = publisher
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._cancelled = threading.Event()

    def emit(self, event: dict[str, Any]) -> bool:
        self._queue.put(event)
        return not self._cancelled.is_set()

    def close(self) -> None:
        """No more events: ``pump`` returns once the queued ones are out."""
        self._queue.put(_END)

    def pump(self, finished: threading.Event) -> None:
        """Publish until ``close`` (or until ``finished`` is set with nothing left to send,
        for a job that never ran)."""
        while True:
            try:
                first = self._queue.get(timeout=0.5)
            except queue.Empty:
                if finished.is_set():
                    return
                continue
            batch = [first]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ended = _END in batch
            for event in _coalesce(e for e in batch if e is not _END):
                if not self._publisher.publish(event):
                    self._cancelled.set()
            if ended:
                return


def _coalesce(events: Iterable[Any]) -> list[dict[str, Any]]:
    merged: list[dict[str, Any]] = []
    for event in events:
        if merged and event["type"] == "delta" and merged[-1]["type"] == "delta":
            last = merged[-1]
            merged[-1] = {
                **last,
                "text": last["text"] + event["text"],
                "tokens": last["tokens"] + event["tokens"],
            }
            if "logprobs" in event:
                merged[-1]["logprobs"] = [*last.get("logprobs", []), *event["logprobs"]]
        else:
            merged.append(event)
    return merged


def error_event(
    message: str,
    *,
    status: int = 500,
    type_: str = "server_error",
    code: str | None = None,
    param: str | None = None,
) -> dict[str, Any]:
    return {
        "type": "error",
        "status": status,
        "message": message,
        "error_type": type_,
        "code": code,
        "param": param,
    }
