"""The caller's end of a request submitted to an engine (``Engine.submit``).

The engine sends each event as it happens; the caller either iterates the handle (the events
in order, ending with the final one) or gives ``submit`` a listener, which the engine calls on
its own thread instead: the worker's listener only puts the event on its outbox, so the
decode never waits on Redis and no thread wakes per event. ``wait`` returns the final event
once the request is done, and raises what the engine raised (a failed decode, a closed
engine).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator

from workers.engine.events import FINAL, EngineEvent
from workers.engine.requests import AnyRequest

Listener = Callable[[EngineEvent], None]

_END = object()


class RequestHandle:
    def __init__(self, request: AnyRequest, listener: Listener | None = None) -> None:
        self.request = request
        self._listener = listener
        self._events: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._final: EngineEvent | None = None
        self._error: BaseException | None = None
        self.done = threading.Event()

    def cancel(self) -> None:
        """Ask the engine to stop: it ends the request before its next step."""
        self.request.cancel.cancel()

    def __iter__(self) -> Iterator[EngineEvent]:
        """Each event as the engine sends it (none when a listener takes them); raises what
        the engine raised."""
        while True:
            item = self._events.get()
            if item is _END:
                break
            yield item  # type: ignore[misc]
        if self._error is not None:
            raise self._error

    def wait(self, timeout: float | None = None) -> EngineEvent | None:
        """The final event once the request is done (None if it ended without one, as a
        request cancelled before it started does); raises what the engine raised."""
        if not self.done.wait(timeout):
            raise TimeoutError("the request is still running")
        if self._error is not None:
            raise self._error
        return self._final

    # The engine's side.

    def send(self, event: EngineEvent) -> bool:
        """Deliver ``event``; False once the request is cancelled."""
        if isinstance(event, FINAL):
            self._final = event
        if self._listener is not None:
            self._listener(event)
        else:
            self._events.put(event)
        return not self.request.cancel.cancelled()

    def finish(self, error: BaseException | None = None) -> None:
        self._error = error
        self._events.put(_END)
        self.done.set()
