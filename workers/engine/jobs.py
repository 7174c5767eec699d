"""The engine: one per resident model, the only code that touches its llama context.

Contract: ``submit(request)`` queues an ``EngineRequest`` or ``EmbeddingRequest``
(``workers.engine.requests``) and returns a ``RequestHandle`` at once, whose events
(``workers.engine.events``) the caller iterates, or hears through a listener. Underneath, each
request is a job on one of the engine's slots; the engine runs jobs in order,
interactive jobs before batch jobs; within a lane, a job whose sharer (the API key that asked)
has others waiting goes after every sharer's earlier turns (the first waiting job of each
sharer, then the second...), then in arrival order (``workers.broker.fairness``); it sets
``job.done`` when the job has finished (its ``result`` or ``error`` filled in). ``close()``
drains nothing: it stops after the running jobs and fails the ones still queued.

The model's ``ModelProfile`` (template, system prompt, reasoning tags) is given when the engine
is built; ``use_profile`` replaces it when the model's record changes without a reload.

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

from workers.engine.events import Rejected
from workers.engine.handle import Listener, RequestHandle
from workers.engine.media import Projector
from workers.engine.ranking import Ranker, serve_rerank
from workers.engine.requests import (
    BATCH,
    INTERACTIVE,
    AnyRequest,
    EmbeddingRequest,
    ModelProfile,
    RerankRequest,
)
from workers.engine.serving import serve_embeddings, serve_generation
from workers.engine.slots import SerialSlot, Slot
from workers.engine.stepper import cache_cells, sequence_context

__all__ = ["BATCH", "INTERACTIVE", "Engine", "EngineClosed", "EngineJob", "SerialEngine"]

log = logging.getLogger(__name__)

# The work a job does on the slot that takes it.
Work = Callable[[Slot], Any]


@dataclass(order=True)
class EngineJob:
    priority: int
    turn: int
    sequence: int
    run: Work = field(compare=False)
    sharer: str | None = field(default=None, compare=False)
    done: threading.Event = field(default_factory=threading.Event, compare=False)
    result: Any = field(default=None, compare=False)
    error: BaseException | None = field(default=None, compare=False)
    # Told when the job fails without running (the engine closed with it still queued).
    on_failure: Callable[[BaseException], None] | None = field(default=None, compare=False)

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
    return EngineJob(-1, -1, -1, lambda _slot: None)


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
    """The job queue every engine shares (see the module docstring); subclasses run jobs.
    ``embedder`` makes the model's pooled-embedding context, on first use."""

    def __init__(
        self,
        name: str,
        llama: llama_cpp.Llama,
        profile: ModelProfile | None = None,
        embedder: Callable[[], llama_cpp.Llama] | None = None,
    ) -> None:
        self.name = name
        self.llama = llama
        self.profile = profile or ModelProfile()
        # The model's vision projector, when it has one (set by the factory that loads it).
        self.projector: Projector | None = None
        self._make_embedder = embedder
        self._embedder: llama_cpp.Llama | None = None
        self._embedder_lock = threading.Lock()
        self._jobs = JobQueue()
        self._counter = itertools.count()
        self._waiting: Counter[str] = Counter()  # queued jobs per sharer
        self._waiting_lock = threading.Lock()
        self._closed = False

    def submit(self, request: AnyRequest, listener: Listener | None = None) -> RequestHandle:
        """Queue ``request`` in its lane and turn; its events go to the handle (or, given one,
        to ``listener``, on the engine's thread). Raises EngineClosed once closed."""
        handle = RequestHandle(request, listener)
        profile = self.profile

        def work(slot: Slot) -> None:
            error: BaseException | None = None
            try:
                if request.cancel.cancelled_at_start():
                    return
                if isinstance(request, EmbeddingRequest | RerankRequest):
                    self._serve_pooled(request, handle)
                else:
                    serve_generation(slot, profile, request, handle.send, self.projector)
            except BaseException as exc:  # the handle's caller decides what it means
                error = exc
            finally:
                handle.finish(error)

        # A job failed without running (the engine closed under it) ends its handle too.
        self.run_on_slot(
            work, lane=request.priority, sharer=request.sharer, on_failure=handle.finish
        )
        return handle

    def _serve_pooled(
        self, request: EmbeddingRequest | RerankRequest, handle: RequestHandle
    ) -> None:
        """An embedding or rerank request, on the model's second context: a reranker's
        (``Ranker``) scores pairs and nothing else, any other model's embeds."""
        pooled = self.embedder()
        if isinstance(request, RerankRequest) and isinstance(pooled, Ranker):
            serve_rerank(pooled, request, handle.send)
        elif isinstance(request, EmbeddingRequest) and not isinstance(pooled, Ranker):
            serve_embeddings(pooled, request, handle.send)
        else:
            what = "a reranker" if isinstance(pooled, Ranker) else "not a reranker"
            handle.send(Rejected(f"model '{self.name}' is {what}", "invalid_value", "model"))

    def use_profile(self, profile: ModelProfile) -> None:
        """Requests submitted from now on use ``profile`` (the record's template changed)."""
        self.profile = profile

    def embedder(self) -> llama_cpp.Llama:
        """The model's pooled-embedding context, made on first use by the slot that needs it."""
        if self._make_embedder is None:
            raise EngineClosed(f"engine for {self.name} makes no embeddings")
        with self._embedder_lock:
            if self._embedder is None:
                self._embedder = self._make_embedder()
            return self._embedder

    @property
    def context_length(self) -> int:
        """The tokens one sequence may hold, prompt and answer."""
        return sequence_context(self.llama)

    @property
    def cache_cells(self) -> int:
        """The KV cells of the model's context, every sequence's together."""
        return cache_cells(self.llama)

    def run_on_slot(
        self,
        run: Work,
        *,
        lane: int = INTERACTIVE,
        sharer: str | None = None,
        on_failure: Callable[[BaseException], None] | None = None,
    ) -> EngineJob:
        """Queue ``run`` for the next free slot, in lane and turn order: the engine's own
        door for the work of a request (``submit``); tests use it to hold a slot."""
        if self._closed:
            raise EngineClosed(f"engine for {self.name} is closed")
        turn = 0
        if sharer is not None:
            with self._waiting_lock:
                turn = self._waiting[sharer]
                self._waiting[sharer] += 1
        job = EngineJob(lane, turn, next(self._counter), run, sharer=sharer, on_failure=on_failure)
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

    def _run(self, job: EngineJob, slot: Slot) -> None:
        try:
            job.result = job.run(slot)
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
            if job.on_failure is not None:
                job.on_failure(job.error)
            job.done.set()

    def _close_model(self) -> None:
        if self.projector is not None:
            self.projector.close()  # before the model it was opened beside
        if self._embedder is not None:
            self._embedder.close()
        self.llama.close()


class SerialEngine(Engine):
    """Runs one job at a time on one ``Llama`` (see the module docstring)."""

    def __init__(
        self,
        name: str,
        llama: llama_cpp.Llama,
        profile: ModelProfile | None = None,
        embedder: Callable[[], llama_cpp.Llama] | None = None,
    ) -> None:
        super().__init__(name, llama, profile, embedder)
        self._slot = SerialSlot(llama)
        self._thread = threading.Thread(target=self._loop, name=f"engine:{name}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed = True
        self._jobs.put(_wake_up())

    def _loop(self) -> None:
        while (job := self._take()) is not None:
            self._run(job, self._slot)
        self._close_model()
