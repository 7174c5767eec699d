"""The engine: one per resident model, the only code that touches its llama context.

Contract: ``submit(job)`` queues a job and returns at once; the engine runs jobs in order,
interactive jobs before batch jobs; within a lane, a job whose sharer (the API key that asked)
has others waiting goes after every sharer's earlier turns (the first waiting job of each
sharer, then the second...), then in arrival order (``workers.broker.fairness``); it sets
``job.done`` when the job has finished (its ``result`` or ``error`` filled in). Jobs talk to
their caller only through the callbacks they carry. ``close()`` drains nothing: it stops after
the running jobs and fails the ones still queued.

``SerialEngine`` runs one job at a time on its own thread. ``workers.engine.batched.BatchedEngine``
runs up to N at once and decodes their generations together; ``workers.engine.factory`` picks
one.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
from collections import Counter
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
    turn: int
    sequence: int
    run: Callable[[llama_cpp.Llama], Any] = field(compare=False)
    sharer: str | None = field(default=None, compare=False)
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


def _wake_up() -> EngineJob:
    """A job that sorts before every real one: it wakes a waiting thread to see the close."""
    return EngineJob(-1, -1, -1, lambda _llama: None)


class JobQueue(queue.PriorityQueue[EngineJob]):
    """Jobs in lane and turn order; a taker may also wait for an interactive one only."""

    def put(self, item: EngineJob, block: bool = True, timeout: float | None = None) -> None:
        super().put(item, block, timeout)
        # Every waiter looks: one that waits for interactive jobs only must not swallow the
        # wake-up a batch job's taker needs.
        with self.not_empty:
            self.not_empty.notify_all()

    def get_interactive(self) -> EngineJob:
        """The first job once it is an interactive one (or a wake-up), leaving batch jobs to
        the other takers."""
        with self.not_empty:
            while not (self.queue and self.queue[0].priority <= INTERACTIVE):
                self.not_empty.wait()
            job: EngineJob = self._get()
            self.not_full.notify()
            return job


class Engine:
    """The job queue every engine shares (see the module docstring); subclasses run jobs."""

    def __init__(self, name: str, llama: llama_cpp.Llama) -> None:
        self.name = name
        self.llama = llama
        self._jobs = JobQueue()
        self._counter = itertools.count()
        self._waiting: Counter[str] = Counter()  # queued jobs per sharer
        self._waiting_lock = threading.Lock()
        self._closed = False

    def submit(
        self,
        run: Callable[[llama_cpp.Llama], Any],
        *,
        lane: int = INTERACTIVE,
        sharer: str | None = None,
    ) -> EngineJob:
        if self._closed:
            raise EngineClosed(f"engine for {self.name} is closed")
        turn = 0
        if sharer is not None:
            with self._waiting_lock:
                turn = self._waiting[sharer]
                self._waiting[sharer] += 1
        job = EngineJob(lane, turn, next(self._counter), run, sharer=sharer)
        self._jobs.put(job)
        return job

    def queued(self) -> int:
        return self._jobs.qsize()

    def close(self) -> None:
        raise NotImplementedError

    def _take(self, interactive_only: bool = False) -> EngineJob | None:
        """The next job to run (blocking), or the next interactive one; None once the engine
        is closed, after failing the job taken and every other one still queued."""
        job = self._jobs.get_interactive() if interactive_only else self._jobs.get()
        if job.sharer is not None:
            with self._waiting_lock:
                self._waiting[job.sharer] -= 1
                if not self._waiting[job.sharer]:
                    del self._waiting[job.sharer]
        if self._closed:
            self._fail_remaining(job)
            return None
        return job

    def _run(self, job: EngineJob) -> None:
        try:
            job.result = job.run(self.llama)
        except BaseException as exc:  # the job's caller decides what it means
            job.error = exc
        finally:
            job.done.set()

    def _fail_remaining(self, first: EngineJob) -> None:
        pending = [first]
        while True:
            try:
                pending.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        for job in pending:
            job.error = EngineClosed(f"engine for {self.name} closed")
            job.done.set()


class SerialEngine(Engine):
    """Runs one job at a time on one ``Llama`` (see the module docstring)."""

    def __init__(self, name: str, llama: llama_cpp.Llama) -> None:
        super().__init__(name, llama)
        self._thread = threading.Thread(target=self._loop, name=f"engine:{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._jobs.put(_wake_up())

    def _loop(self) -> None:
        while (job := self._take()) is not None:
            self._run(job)
        self.llama.close()
