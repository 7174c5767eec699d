"""The worker's side of batch lines: serve a line's payload like any request, on the batch
lane, and hand its events back to the batch app's runner (``workers.broker.line_server``).

The line runs through ``workers.worker.inference`` like any request (so batch and interactive
answers are made the same way); its events are then read back from the request's stream. What
the line's result is, and recording it, is the batch app's business.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from workers.broker import keys
from workers.broker.wire import (
    EmbeddingsPayload,
    Event,
    GenerationPayload,
    ModelSpec,
    Start,
    decode,
)
from workers.worker.inference import serve_embeddings, serve_generation
from workers.worker.runtime import runtime


class WorkerLineServer:
    """This process's ``LineServer``: batch lines on the runtime's batch runner threads.

    Those threads are apart from Celery's, so a worker busy with a batch backlog always has a
    Celery thread to take the next interactive request: that request then waits only for the
    batch lines the engine is running.
    """

    @property
    def instance(self) -> str:
        return runtime().instance

    def start(self, run: Callable[[], None]) -> None:
        runtime().batch_runners.submit(run)

    def serve(
        self, request_id: str, spec: ModelSpec, payload: GenerationPayload | EmbeddingsPayload
    ) -> list[Event]:
        if isinstance(payload, EmbeddingsPayload):
            serve_embeddings(request_id, spec, payload)
        else:
            serve_generation(request_id, spec, payload)
        return _read_events(request_id)


def _read_events(request_id: str) -> list[Event]:
    client = runtime().redis
    stream = keys.request_stream(request_id)
    entries: Any = client.xrange(stream)
    client.delete(stream)  # read once, here: nobody else relays a batch line
    events = [decode(fields[b"e"]) for _, fields in entries]
    return [e for e in events if not isinstance(e, Start)]
