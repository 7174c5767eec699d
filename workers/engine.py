"""The engine: one per resident model, the only code that touches its llama context.

Contract: ``submit(job)`` queues a job and returns at once; the engine's own thread runs jobs
one at a time, interactive jobs before batch jobs and each lane in arrival order, and sets
``job.done`` when the job has finished (its ``result`` or ``error`` filled in). Jobs talk to
their caller only through the callbacks they carry. ``close()`` drains nothing: it stops the
thread after the running job and fails the ones still queued.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import llama_cpp

log = logging.getLogger(__name__)

INTERACTIVE = 0
BATCH = 1


@dataclass(order=True)
class EngineJob:
    priority: int
    sequence: int
    run: Callable[[llama_cpp.Llama], Any] = field(compare=False)
    done: threading.Event = field(default_factory=threading.Event, compare=False)
    result: Any = field(default=None, compare=False)
    error: BaseException | None = field(default=None, compare=False)

    def wait(self) -> Any:
        """Block until the job ran; re-raise what it raised."""
        self.done.wait()
        if self.error is not None:
            raise self.error
        return self.result


class EngineClosed(RuntimeError):
    pass


class SerialEngine:
    """Runs one job at a time on one ``Llama`` (see the module docstring)."""

    def __init__(self, name: str, llama: llama_cpp.Llama) -> None:
        self.name = name
        self.llama = llama
        self._jobs: queue.PriorityQueue[EngineJob] = queue.PriorityQueue()
        self._counter = itertools.count()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name=f"engine:{name}", daemon=True)
        self._thread.start()

    def submit(
        self, run: Callable[[llama_cpp.Llama], Any], *, lane: int = INTERACTIVE
    ) -> EngineJob:
        if self._closed:
            raise EngineClosed(f"engine for {self.name} is closed")
        job = EngineJob(lane, next(self._counter), run)
        self._jobs.put(job)
        return job

    def queued(self) -> int:
        return self._jobs.qsize()

    def close(self) -> None:
        self._closed = True
        self._jobs.put(EngineJob(-1, -1, lambda _llama: None))  # wakes the loop to exit

    def _loop(self) -> None:
        while True:
            job = self._jobs.get()
            if self._closed:
                self._fail_remaining(job)
                return
            try:
                job.result = job.run(self.llama)
            except BaseException as exc:  # the job's caller decides what it means
                job.error = exc
            finally:
                job.done.set()

    def _fail_remaining(self, first: EngineJob) -> None:
        pending = [first]
        while not self._jobs.empty():
            pending.append(self._jobs.get_nowait())
        for job in pending:
            job.error = EngineClosed(f"engine for {self.name} closed")
            job.done.set()
        self.llama.close()
