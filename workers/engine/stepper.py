"""Continuous batching: one thread decodes every active sequence of a model together.

Contract: ``Stepper(llama, slots, budget)`` owns ``llama``'s context from then on (rebuilt by
``shared_context`` into one KV cache of ``budget.cells`` cells that up to ``slots`` sequences
share, each taking the cells its prompt and ``max_tokens`` need). A sequence joins with
``start(prompt, sampler, max_tokens)`` and gets a ``TokenStream``: iterating it yields each
sampled token (the end-of-generation token included, then nothing more) with its logprob entry
when a ``LogprobReader`` was given; ``close()`` takes the sequence out before the next step and
frees its stream (its sequence id) for the next sequence. Each step is one
``llama_decode`` over a ``llama_batch`` holding the next token of every generating sequence
and the prompts of the joining sequences (as much of them as ``n_batch`` holds); each sequence
with a row of logits in it then samples its own next token from that row with its own sampler
chain.

The loop repeats three things: plan the step (``workers.engine.planner.plan_step``, a pure
function of the sequences' states, which also says which sequences leave and which take a
free stream), run it (fill the batch, ``llama_decode``, sample), then move each sequence on to
its next state. The plan and the bookkeeping it changes happen under the stepper's lock; the
decode and the sampling outside it.

A sequence never waits for another to be read: the stepper samples ahead of the reader, by at
most ``LOOKAHEAD`` tokens, so that a slow reader skips steps instead of holding up the rest.

Each stream of the cache keeps what its last sequence left in it, until its cells are needed
for a sequence that does not fit beside it. A joining sequence takes the free stream that
already holds the longest start of its prompt (a chat's earlier turns, a shared system prompt,
the same prompt again) and decodes only the rest, as llama-cpp-python does in a context of one
sequence.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

from workers.engine.logprobs import LogprobEntry, LogprobReader
from workers.engine.planner import (
    LOOKAHEAD,
    Admission,
    CacheBudget,
    Sequence,
    SequenceState,
    StepPlan,
    Streams,
    plan_step,
)
from workers.engine.vocabulary import vocabulary
from workers.kv_cache import keeps_full_window

if TYPE_CHECKING:
    from workers.engine.media import MediaPrompt

__all__ = ["LOOKAHEAD", "DecodeFailed", "StepStats", "Stepper", "TokenStream"]

log = logging.getLogger(__name__)

_END = object()  # after a sequence's last token


class DecodeFailed(RuntimeError):
    """llama_decode refused a step this sequence was part of."""


@dataclass
class StepStats:
    """What the stepper has done so far: tests and the registry read it."""

    steps: int = 0  # llama_decode calls
    tokens: int = 0  # tokens decoded, prompts included
    sampled: int = 0  # tokens sampled
    max_sequences: int = 0  # the most sequences one step carried
    shared_steps: int = 0  # steps that carried more than one sequence
    reused_tokens: int = 0  # prompt tokens found in a stream's cache instead of decoded
    evicted: int = 0  # idle streams whose cache made room for a sequence
    # The latest steps, oldest first: ("prompt", tokens) or ("generate", sequences).
    recent: deque[tuple[str, int]] = field(default_factory=lambda: deque(maxlen=64))


def shared_context(llama: llama_cpp.Llama, sequences: int, cells: int) -> None:
    """Give ``llama`` a context whose KV cache holds ``cells`` tokens in all, shared by up to
    ``sequences`` sequences (``kv_unified``): each sequence takes the cells it needs, not a
    fixed stream of ``llama.n_ctx()``, which stays the most one sequence may hold. Each
    sequence attends to its own cells only, as it would alone, and a step's tokens go through
    the weights as one matrix in any order. Steps of more than one token run on
    ``n_threads_batch``, as prompts do in a context of one sequence: the same thread counts as
    a serial engine."""
    per_sequence = llama.n_ctx()
    params = llama_cpp.llama_context_params.from_buffer_copy(llama.context_params)
    params.n_ctx = max(cells, per_sequence)
    params.n_seq_max = sequences
    params.kv_unified = True
    # As llama-server has it: llama.cpp turns flash attention on where the device supports it
    # (a step of eight on the demo model: 45 ms instead of 52 on the CPU). A quantized V cache
    # keeps it on, as it was loaded (``workers.engine.factory``): it cannot do without.
    if params.flash_attn_type != llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED:
        params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    # As llama-server has it: a model's sliding-window layers keep each sequence's last window
    # of tokens only, not every cell (llama-cpp-python's default), as the memory budget counts
    # them (``workers.kv_cache``). For the demo model the cache is then a sixth of the
    # size, and making it took most of a cold load. ``Stepper._admit`` keeps a cached start
    # only where the window before it is still there.
    params.swa_full = keeps_full_window(sequences)
    # What one sequence may hold: sequence_context reads it here.
    llama.context_params.n_ctx = per_sequence
    old = llama._ctx
    old.close()  # first, so that two KV caches never exist at once
    llama._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)


def sequence_context(llama: llama_cpp.Llama) -> int:
    """How many tokens (prompt and completion) one sequence may hold: the context its model
    was loaded with (``shared_context`` keeps it in ``llama.context_params``)."""
    ctx = llama._ctx.ctx
    if int(llama_cpp.llama_n_seq_max(ctx)) <= 1:
        return int(llama_cpp.llama_n_ctx(ctx))
    return int(llama.context_params.n_ctx)


def cache_cells(llama: llama_cpp.Llama) -> int:
    """The KV cells of ``llama``'s context, every sequence's together."""
    return int(llama_cpp.llama_n_ctx(llama._ctx.ctx))


class _Sequence(Sequence):
    """One generation on one slot: the planner's view of it, and what decoding it needs."""

    def __init__(
        self,
        prompt: list[int],
        sampler: _internals.LlamaSampler,
        max_tokens: int,
        reader: LogprobReader | None,
        plain_greedy: bool = False,
        interactive: bool = True,
        cancelled: Callable[[], bool] | None = None,
        media: MediaPrompt | None = None,
    ) -> None:
        super().__init__(prompt, max_tokens, interactive)
        self.media = media  # the prompt's images, decoded as pieces of their own
        self.cancelled = cancelled  # read before each step: its request was cancelled
        self.next_token: int | None = None  # sampled, not yet decoded: set while GENERATING
        self.sampler = sampler
        self.reader = reader
        self.plain_greedy = plain_greedy  # its chain is argmax alone: see Stepper._greedy_tokens
        # Sampled tokens with their logprob entries, then _END, or the exception that ended it.
        self.delivered: queue.SimpleQueue[Any] = queue.SimpleQueue()


class TokenStream:
    """The reader's end of a sequence (see the module docstring)."""

    def __init__(self, stepper: Stepper, sequence: _Sequence) -> None:
        self._stepper = stepper
        self._sequence = sequence

    def __iter__(self) -> Iterator[tuple[int, LogprobEntry | None]]:
        sequence = self._sequence
        stepper = self._stepper
        while True:
            item = sequence.delivered.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            sequence.read += 1
            # After counting the read: a loop that planned without it is still planning or
            # waiting, and may have held this sequence back for it.
            if stepper._planning and sequence.state is SequenceState.GENERATING:
                stepper.wake()
            yield item

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens found in the cache rather than decoded (known once it has a token)."""
        return self._sequence.cached

    def close(self) -> None:
        self._stepper.close(self._sequence)


class Stepper:
    """The decode loop of one model (see the module docstring)."""

    def __init__(
        self, name: str, llama: llama_cpp.Llama, slots: int, budget: CacheBudget | None = None
    ) -> None:
        self.llama = llama
        self.slots = slots
        self.budget = budget
        self._tokens = vocabulary(llama)
        self._n_vocab = llama.n_vocab()
        self.stats = StepStats()
        self._ctx = llama._ctx.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._n_batch = int(llama_cpp.llama_n_batch(self._ctx))
        self._n_swa = int(llama_cpp.llama_model_n_swa(llama._model.model))  # 0: no window
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        # Under the lock: the sequences holding a stream (by slot), those waiting for one in
        # the order they came (the engine's lane and turn order), those their readers closed.
        self._active: dict[int, _Sequence] = {}
        self._joining: list[_Sequence] = []
        self._closed: set[_Sequence] = set()
        self._streams = Streams.empty(slots)
        # True while the loop plans or waits: a reader's progress then may change the plan.
        self._planning = False
        self._wakeup = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._loop, name=f"stepper:{name}", daemon=True)
        self._thread.start()

    def start(
        self,
        prompt: list[int],
        sampler: _internals.LlamaSampler,
        max_tokens: int,
        reader: LogprobReader | None = None,
        plain_greedy: bool = False,
        interactive: bool = True,
        cancelled: Callable[[], bool] | None = None,
        media: MediaPrompt | None = None,
    ) -> TokenStream:
        """Queue a sequence; it takes a free stream before a step once the cells it needs are
        free (a batch line's ``interactive`` is False). At most ``slots`` sequences may be
        open at once; ``prompt`` holds at least one token. Once ``cancelled()`` is true the
        sequence leaves before the next step and its stream ends, mid-prompt or not. A prompt
        with images comes with its ``media``: each image is decoded, before the step that
        takes the text after it, into the sequence's cells as a prompt piece of its own."""
        if not prompt:
            raise ValueError("a sequence needs a prompt of at least one token")
        sequence = _Sequence(
            list(prompt), sampler, max_tokens, reader, plain_greedy, interactive, cancelled, media
        )
        if max_tokens <= 0:
            # Nothing to decode: it never takes a stream.
            sequence.state = SequenceState.FINISHED
            sequence.delivered.put(_END)
            sampler.close()
            return TokenStream(self, sequence)
        with self._wakeup:
            if self._stopping:
                raise DecodeFailed("the engine is closed")
            self._joining.append(sequence)
            self._wakeup.notify()
        return TokenStream(self, sequence)

    def close(self, sequence: _Sequence) -> None:
        """Its reader is gone: it leaves before the next step."""
        with self._wakeup:
            self._closed.add(sequence)
            self._wakeup.notify()

    def active(self) -> int:
        """How many sequences hold a stream now (closed ones leave at the next step)."""
        with self._wakeup:
            return len(self._active)

    def waiting(self) -> int:
        """How many sequences wait for a stream or for the cells they need."""
        with self._wakeup:
            return len(self._joining)

    def wake(self) -> None:
        with self._wakeup:
            self._wakeup.notify()

    def stop(self) -> None:
        """End the loop (once the sequences still running are closed) and free the batch."""
        with self._wakeup:
            self._stopping = True
            self._wakeup.notify()
        self._thread.join()
        llama_cpp.llama_batch_free(self._batch)

    def _loop(self) -> None:
        while True:
            with self._wakeup:
                self._planning = True  # before the plan reads what the readers have taken
                plan = self._plan()
                while plan.kind is None:
                    if self._stopping:
                        self._drop_all()
                        return
                    self._wakeup.wait()
                    plan = self._plan()
                self._planning = False
            try:
                self._run(plan)
            except Exception as exc:  # a bug here must not hang every reader
                log.exception("decode step failed")
                self._fail(plan.members, exc)

    def _plan(self) -> StepPlan[_Sequence]:
        """Under the lock: plan the next step, and carry out what it decided about streams
        (closed sequences leave, waiting ones are admitted)."""
        self._close_cancelled()
        plan = plan_step(
            self._active,
            self._joining,
            self._closed,
            self._streams,
            self._n_batch,
            self.budget,
        )
        self._closed.clear()
        if plan.leave or plan.admit:
            for sequence in plan.leave:
                self._drop(sequence)
            for slot in plan.evict:
                self._streams.cached[slot] = []
                llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
                self.stats.evicted += 1
            for sequence, admission in plan.admit:
                self._admit(sequence, admission)
            gone = set(plan.leave) | {sequence for sequence, _ in plan.admit}
            self._joining = [sequence for sequence in self._joining if sequence not in gone]
        return plan

    def _close_cancelled(self) -> None:
        """Under the lock: a sequence whose request was cancelled leaves as if its reader had
        closed it, and its reader sees its stream end."""
        for sequence in [*self._active.values(), *self._joining]:
            if (
                sequence.cancelled is not None
                and sequence.state is not SequenceState.FINISHED
                and sequence.cancelled()
            ):
                sequence.cancelled = None  # its stream ends once
                sequence.delivered.put(_END)
                self._closed.add(sequence)

    def _admit(self, sequence: _Sequence, admission: Admission) -> None:
        """Give ``sequence`` the stream the plan chose, cut back to the start it shares."""
        slot, keep = admission.slot, admission.keep
        if sequence.media is not None:
            keep = sequence.media.keep(keep)  # an image decodes whole
        if (
            keep <= 0
            or not llama_cpp.llama_memory_seq_rm(self._memory, slot, keep, -1)
            or not self._window_kept(slot, keep)
        ):
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
            keep = 0
        streams = self._streams
        streams.cached[slot] = sequence.prompt[:keep]
        streams.admissions += 1
        streams.last_used[slot] = streams.admissions
        sequence.admitted = streams.admissions
        sequence.slot = slot
        sequence.fed = sequence.cached = keep
        sequence.state = SequenceState.PROMPT
        self.stats.reused_tokens += keep
        self._active[slot] = sequence

    def _window_kept(self, slot: int, keep: int) -> bool:
        """Whether stream ``slot`` still holds what decoding on from ``keep`` needs: the
        sliding-window layers of a model that has them drop a sequence's cells older than its
        window, so the window before ``keep`` must still be there (as llama-server checks)."""
        oldest = int(llama_cpp.llama_memory_seq_pos_min(self._memory, slot))  # -1: none
        return 0 <= oldest <= max(0, keep - self._n_swa)

    def _drop(self, sequence: _Sequence) -> None:
        """The stream keeps its cache: the next sequence may start where this one began."""
        if sequence.state is not SequenceState.WAITING:
            del self._active[sequence.slot]
        sequence.sampler.close()

    def _drop_all(self) -> None:
        for sequence in list(self._active.values()):
            self._drop(sequence)

    def _run(self, plan: StepPlan[_Sequence]) -> None:
        """One decode as planned, then each member's next state."""
        members = plan.members
        for sequence in members:
            media = sequence.media
            if media is not None and sequence.state is SequenceState.PROMPT:
                try:
                    self._decode_images(sequence, media)
                except RuntimeError as exc:
                    members = [m for m in members if m is not sequence]
                    self._fail([sequence], DecodeFailed(str(exc)))
        rows, n = self._fill(members)
        if n == 0:
            return
        batch = self._batch
        batch.n_tokens = n
        status = llama_cpp.llama_decode(self._ctx, batch)
        if status != 0:
            self._fail(members, DecodeFailed(f"llama_decode returned {status}"))
            return
        stats = self.stats
        stats.steps += 1
        stats.tokens += n
        stats.max_sequences = max(stats.max_sequences, len(members))
        stats.recent.append((plan.kind or "", n))
        if len(members) > 1:
            stats.shared_steps += 1
        # Sample every row before waking any reader: a reader holding the GIL would make each
        # sampling call (they release it) wait for it again.
        greedy = self._greedy_tokens(rows)
        sampled = [
            (sequence, self._sample(sequence, row, greedy[i]))
            for i, (sequence, row) in enumerate(rows)
        ]
        for sequence, items in sampled:
            for item in items:
                sequence.delivered.put(item)

    def _decode_images(self, sequence: _Sequence, media: MediaPrompt) -> None:
        """Decode the images ``sequence``'s prompt has next, each in a decode of its own (an
        image's embeddings are not tokens, so they cannot share the step's batch)."""
        while (span := media.span_at(sequence.fed)) is not None:
            media.projector.decode(self._ctx, span, sequence.fed, sequence.slot, self._n_batch)
            self._streams.cached[sequence.slot].extend(
                sequence.prompt[span.start : span.start + span.length]
            )
            sequence.fed += span.length
            self.stats.tokens += span.length

    def _fill(self, members: list[_Sequence]) -> tuple[list[tuple[_Sequence, int]], int]:
        """Put each member's tokens in the batch, in the plan's order: a generating sequence's
        next token, a prompting one's next prompt tokens (up to ``n_batch`` in all). Returns
        the rows to sample (sequence, batch index: a generating sequence's row,
        and a prompt's last once it is all in) and the token count."""
        rows = []
        n = 0
        for sequence in members:
            if sequence.state is SequenceState.GENERATING:
                assert sequence.next_token is not None
                self._put(n, sequence.next_token, sequence.fed + sequence.sampled - 1, sequence)
                sequence.next_token = None
                n += 1
                self._batch.logits[n - 1] = True
                rows.append((sequence, n - 1))
                continue
            end = len(sequence.prompt)
            if sequence.media is not None:
                end = sequence.media.text_end(sequence.fed)  # the next image goes alone
            take = min(end - sequence.fed, self._n_batch - n)
            for i in range(take):
                self._put(n + i, sequence.prompt[sequence.fed + i], sequence.fed + i, sequence)
            sequence.fed += take
            n += take
            if sequence.fed == len(sequence.prompt):
                self._batch.logits[n - 1] = True
                rows.append((sequence, n - 1))
        return rows, n

    def _put(self, index: int, token: int, position: int, sequence: _Sequence) -> None:
        self._streams.cached[sequence.slot].append(token)
        batch = self._batch
        batch.token[index] = token
        batch.pos[index] = position
        batch.n_seq_id[index] = 1
        batch.seq_id[index][0] = sequence.slot
        batch.logits[index] = False

    def _greedy_tokens(self, rows: list[tuple[_Sequence, int]]) -> list[int | None]:
        """The argmax of each plain-greedy row (None for the others), all read through one call
        into llama.cpp: the same token as the chain's greedy sampler (the first of the highest
        logits). ``llama_sampler_sample`` would copy the whole vocabulary into candidates first,
        and each call into llama.cpp gives the GIL up and waits to get it back, on the thread
        every sequence is waiting for."""
        if not any(sequence.plain_greedy for sequence, _ in rows):
            return [None] * len(rows)
        # The step's output rows in batch order, one for each token that asked for logits:
        # exactly the rows of ``rows``, in the same order.
        outputs = np.ctypeslib.as_array(
            llama_cpp.llama_get_logits(self._ctx), shape=(len(rows), self._n_vocab)
        )
        return [
            int(outputs[i].argmax()) if sequence.plain_greedy else None
            for i, (sequence, _) in enumerate(rows)
        ]

    def _sample(self, sequence: _Sequence, row: int, greedy: int | None) -> list[Any]:
        """Sample ``sequence``'s next token from ``row`` (or take ``greedy``, its argmax
        already read): what to deliver to its reader. The sequence is GENERATING after it,
        or FINISHED."""
        if greedy is not None:
            token = greedy
        else:
            token = int(llama_cpp.llama_sampler_sample(sequence.sampler.sampler, self._ctx, row))
        # The logits of this step are gone after the next one: read logprobs now.
        entry = sequence.reader.entry(token, row) if sequence.reader is not None else None
        sequence.sampled += 1
        self.stats.sampled += 1
        if self._tokens.is_eog(token) or sequence.sampled >= sequence.max_tokens:
            sequence.state = SequenceState.FINISHED
            return [(token, entry), _END]
        sequence.next_token = token
        sequence.state = SequenceState.GENERATING
        return [(token, entry)]

    def _fail(self, sequences: list[_Sequence], exc: BaseException) -> None:
        for sequence in sequences:
            if sequence.state is not SequenceState.FINISHED:
                sequence.state = SequenceState.FINISHED
                sequence.next_token = None
                sequence.delivered.put(exc)
            # Its cache may hold part of the failed step: start that stream afresh.
            self._streams.cached[sequence.slot] = []
            with contextlib.suppress(Exception):
                llama_cpp.llama_memory_seq_rm(self._memory, sequence.slot, -1, -1)
