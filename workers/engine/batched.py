"""An engine that runs up to N jobs of one model at once and decodes their generations together.

Same contract as ``workers.engine.jobs`` (lanes, fair turns, ``close``), with N slots instead of
one. Each slot has a thread that takes the next job from the shared queue whenever its last
job has finished, so a free slot always goes to the first waiting job in lane and turn order:
interactive jobs first, batch lines fill the rest, all but one slot: the first slot takes
interactive jobs only, so one is always ready for a chat request however long the backlog.

The slots share one KV cache of a fixed number of cells, sized for ``cache_sequences``
sequences of the model's whole context: a generation starts once the cells its prompt and
``max_tokens`` need are free (``workers.engine.planner.CacheBudget``), so many short answers
run at once where a few long ones would fill the cache. Batch lines leave one whole context's
cells to interactive requests, as they leave them the first slot, and while an interactive
request decodes they take at most half of each step (``CacheBudget.batch_width``).

A request runs on its slot's thread as it would on a serial engine (templates, tokenization
and tool plans are the same code); its slot is a ``workers.engine.slots.BatchSlot``, whose
generations go to the model's ``Stepper`` instead of ``llama.generate`` and join every other
slot's generation in the same decode steps. A generation that ends, stops or is cancelled
leaves at the next step boundary and its thread takes the next job at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import llama_cpp

from workers.engine.jobs import INTERACTIVE, Engine, _wake_up
from workers.engine.planner import CacheBudget
from workers.engine.requests import ModelProfile
from workers.engine.slots import BatchSlot
from workers.engine.stepper import Stepper, StepStats, cache_cells, shared_context


class BatchedEngine(Engine):
    """Runs up to ``parallel`` jobs on one ``Llama`` at once, in a KV cache of
    ``cache_sequences`` whole contexts (default: one for each; see the module docstring)."""

    def __init__(
        self,
        name: str,
        llama: llama_cpp.Llama,
        parallel: int,
        cache_sequences: int | None = None,
        profile: ModelProfile | None = None,
        embedder: Callable[[], llama_cpp.Llama] | None = None,
    ) -> None:
        super().__init__(name, llama, profile, embedder)
        self.parallel = parallel
        per_sequence = llama.n_ctx()
        shared_context(llama, parallel, per_sequence * (cache_sequences or parallel))
        cells = cache_cells(llama)
        # Beside a chat, batch lines take half the step: its tokens then come twice as fast.
        self.budget = CacheBudget(
            cells,
            batch_cells=cells - min(per_sequence, cells // 2),
            batch_width=max(1, parallel // 2),
        )
        self.stepper = Stepper(name, llama, parallel, self.budget)
        self._running = parallel
        self._running_lock = threading.Lock()
        self._threads = [
            threading.Thread(
                target=self._slot_loop, args=(i,), name=f"engine:{name}:{i}", daemon=True
            )
            for i in range(parallel)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def stats(self) -> StepStats:
        return self.stepper.stats

    def close(self) -> None:
        self._closed = True
        for _ in range(self.parallel):
            self._jobs.put(_wake_up())

    def _slot_loop(self, index: int) -> None:
        slot = BatchSlot(self.stepper, index)
        # Slot 0 is kept for interactive jobs: with batch lines in every other slot, a chat
        # request still starts at the next step instead of after a line.
        interactive_only = index == 0
        try:
            while (job := self._take(interactive_only)) is not None:
                slot.interactive = job.priority == INTERACTIVE
                self._run(job, slot)
        finally:
            self._slot_done()

    def _slot_done(self) -> None:
        """The last slot thread to finish stops the stepper and frees the model."""
        with self._running_lock:
            self._running -= 1
            last = self._running == 0
        if last:
            self.stepper.stop()
            self._close_model()
