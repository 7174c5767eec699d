"""The door between the batch app's line runner and the worker that serves its lines.

A batch line's life (claim, the response body its endpoint would have returned, recording it
exactly once, release, cancel) belongs to the batch app (``inference_app.batches.runner``);
running its payload belongs to the worker. The runner is a task of the batch app that runs in
a worker process, yet web code never imports the worker and the worker never imports web code:
so the worker offers a ``LineServer`` here when it starts, and the runner asks for it. What
crosses the door is the broker's own wire types: a payload in, its events out.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from workers.broker.wire import EmbeddingsPayload, Event, GenerationPayload, ModelSpec


class LineServer(Protocol):
    """What a worker process does for batch lines.

    ``instance`` names this worker's life (a claimed line records it); ``start`` runs a line
    on one of the worker's batch runner threads and returns at once; ``serve`` runs one payload
    on the model and returns the events it published (without ``Start``), each line's stream
    read once and deleted. ``serve`` raises what the broker raises when it is away.
    """

    @property
    def instance(self) -> str: ...

    def start(self, run: Callable[[], None]) -> None: ...

    def serve(
        self, request_id: str, spec: ModelSpec, payload: GenerationPayload | EmbeddingsPayload
    ) -> list[Event]: ...


_server: LineServer | None = None


def offer_line_server(server: LineServer) -> None:
    """Called once by a worker process as it starts."""
    global _server
    _server = server


def line_server() -> LineServer:
    """The worker's line server; raises RuntimeError outside a worker process."""
    if _server is None:
        raise RuntimeError("batch lines run in a worker process, and none offered a line server")
    return _server
