"""Continuous batching: one thread decodes every active sequence of a model together.

Contract: ``Stepper(llama, slots)`` owns ``llama``'s context from then on (rebuilt by
``parallel_context`` so that its KV cache holds ``slots`` sequences side by side). A sequence
joins with ``start(prompt, sampler, max_tokens)`` and gets a ``TokenStream``: iterating it
yields each sampled token (the end-of-generation token included, then nothing more) with its
logprob entry when a ``LogprobReader`` was given; ``close()`` takes the sequence out before the
next step and frees its stream of the cache for the next sequence. Each step is one
``llama_decode`` over a ``llama_batch`` holding either the next token of every generating
sequence or one joining sequence's prompt (as much of it as ``n_batch`` holds; prompts go
first, see ``Stepper._step``); each sequence then samples its own next token from its own row
of logits with its own sampler chain.

A sequence never waits for another to be read: the stepper samples ahead of the reader, by at
most ``LOOKAHEAD`` tokens, so that a slow reader skips steps instead of holding up the rest.

Each stream of the cache keeps what its last sequence left in it. A joining sequence takes the
free stream that already holds the longest start of its prompt (a chat's earlier turns, a
shared system prompt, the same prompt again) and decodes only the rest, as llama-cpp-python
does in a context of one sequence.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import llama_cpp
import numpy as np
from llama_cpp import _internals

from workers.engine.logprobs import LogprobReader
from workers.engine.vocabulary import vocabulary

log = logging.getLogger(__name__)

_END = object()  # after a sequence's last token

# Tokens a sequence may be sampled ahead of its reader. Past a stop string or a cancel they are
# wasted work; too few and a reader that loses the GIL for a moment misses steps.
LOOKAHEAD = 16


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
    # The latest steps, oldest first: ("prompt", tokens) or ("generate", sequences).
    recent: deque[tuple[str, int]] = field(default_factory=lambda: deque(maxlen=64))


def parallel_context(llama: llama_cpp.Llama, slots: int) -> None:
    """Give ``llama`` a context whose KV cache holds ``slots`` sequences of ``llama.n_ctx()``
    tokens each, in separate streams (``kv_unified`` off, as llama-server has it): each
    sequence attends to its own cells only, as it would alone. A step's tokens still go through
    the weights as one matrix, as long as the batch lists its sequences in slot order (see
    ``Stepper._ready_sequences``). Steps of more than one token run on ``n_threads_batch``,
    as prompts do in a context of one sequence: the same thread counts as a serial engine."""
    per_sequence = llama.n_ctx()
    params = llama.context_params
    params.n_ctx = per_sequence * slots
    params.n_seq_max = slots
    params.kv_unified = False
    # As llama-server has it: llama.cpp turns flash attention on where the device supports it
    # (a step of eight on the demo model: 45 ms instead of 52 on the CPU).
    params.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_AUTO
    old = llama._ctx
    old.close()  # first, so that two KV caches never exist at once
    llama._ctx = _internals.LlamaContext(model=llama._model, params=params, verbose=False)


def sequence_context(llama: llama_cpp.Llama) -> int:
    """How many tokens (prompt and completion) one sequence may hold: its own stream's share
    of the cache, the context its model was loaded with."""
    ctx = llama._ctx.ctx
    return int(llama_cpp.llama_n_ctx(ctx)) // max(1, int(llama_cpp.llama_n_seq_max(ctx)))


class _Sequence:
    """One generation on one slot; the stepper's thread alone touches its decode state."""

    def __init__(
        self,
        prompt: list[int],
        sampler: _internals.LlamaSampler,
        max_tokens: int,
        reader: LogprobReader | None,
        plain_greedy: bool = False,
    ) -> None:
        self.slot = -1  # its stream of the cache (its sequence id), chosen when it is admitted
        self.prompt = prompt
        self.fed = 0  # prompt tokens decoded so far
        self.next_token: int | None = None  # sampled, not yet decoded
        self.sampler = sampler
        self.max_tokens = max_tokens
        self.reader = reader
        self.sampled = 0
        self.plain_greedy = plain_greedy  # its chain is argmax alone: see Stepper._greedy_tokens
        # Sampled tokens with their logprob entries, then _END, or the exception that ended it.
        self.delivered: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.read = 0  # tokens the reader has taken
        self.finished = False  # nothing more to sample: EOG, max_tokens or a failure
        self.closed = False  # the reader is gone
        self.stalled = False  # the stepper waits for the reader to catch up

    def ready(self) -> bool:
        return not self.finished and self.sampled - self.read < LOOKAHEAD


class TokenStream:
    """The reader's end of a sequence (see the module docstring)."""

    def __init__(self, stepper: Stepper, sequence: _Sequence) -> None:
        self._stepper = stepper
        self._sequence = sequence

    def __iter__(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        sequence = self._sequence
        while True:
            item = sequence.delivered.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            sequence.read += 1
            if sequence.stalled:
                self._stepper.wake()
            yield item

    def close(self) -> None:
        self._sequence.closed = True
        self._stepper.wake()


class Stepper:
    """The decode loop of one model (see the module docstring)."""

    def __init__(self, name: str, llama: llama_cpp.Llama, slots: int) -> None:
        self.llama = llama
        self.slots = slots
        self._tokens = vocabulary(llama)
        self._n_vocab = llama.n_vocab()
        self.stats = StepStats()
        self._ctx = llama._ctx.ctx
        self._memory = llama_cpp.llama_get_memory(self._ctx)
        self._n_batch = int(llama_cpp.llama_n_batch(self._ctx))
        self._batch = llama_cpp.llama_batch_init(self._n_batch, 0, 1)
        self._active: dict[int, _Sequence] = {}  # slot -> sequence, the stepper's thread only
        self._joining: list[_Sequence] = []
        # The tokens each stream of the cache holds, and when it was last given out.
        self._cached: list[list[int]] = [[] for _ in range(slots)]
        self._last_used = [0] * slots
        self._admitted = 0
        self._prompt_tokens_in_a_row = 0  # decoded since the last generation step
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
    ) -> TokenStream:
        """Queue a sequence; it takes a free stream before the next step. At most ``slots``
        sequences may be open at once."""
        sequence = _Sequence(list(prompt), sampler, max_tokens, reader, plain_greedy)
        if max_tokens <= 0:
            sequence.finished = True
            sequence.delivered.put(_END)
        with self._wakeup:
            if self._stopping:
                raise DecodeFailed("the engine is closed")
            self._joining.append(sequence)
            self._wakeup.notify()
        return TokenStream(self, sequence)

    def active(self) -> int:
        """How many sequences hold a stream now (closed ones leave at the next step)."""
        with self._wakeup:
            return len(self._active)

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
                ready = self._ready_sequences()
                while not ready:
                    if self._stopping:
                        self._drop_all()
                        return
                    self._wakeup.wait()
                    ready = self._ready_sequences()
            try:
                self._step(ready)
            except Exception as exc:  # a bug here must not hang every reader
                log.exception("decode step failed")
                self._fail(ready, exc)

    def _ready_sequences(self) -> list[_Sequence]:
        """Under the lock: drop closed sequences, admit joining ones (in the order they came,
        which is the engine's lane and turn order), and return those with work this step."""
        for slot, sequence in list(self._active.items()):
            if sequence.closed:
                self._drop(slot)
        while self._joining and len(self._active) < self.slots:
            self._admit(self._joining.pop(0))
        ready = []
        for sequence in self._active.values():
            if sequence.finished:
                continue
            sequence.stalled = True  # before the check: a read after it must wake the loop
            if sequence.ready():
                sequence.stalled = False
                ready.append(sequence)
        # In slot order: llama.cpp cuts a batch over split streams into micro-batches of
        # consecutive sequence ids, so eight sequences out of order cost up to eight decodes
        # (measured on the demo model: 110 ms a step of eight, against 52 ms in order).
        return sorted(ready, key=lambda sequence: sequence.slot)

    def _admit(self, sequence: _Sequence) -> None:
        """Give ``sequence`` the free stream holding the longest start of its prompt (the
        least recently used among equals) and cut that stream back to the shared start."""
        prompt = sequence.prompt

        def shared(slot: int) -> int:
            cached = self._cached[slot]
            n = 0
            for a, b in zip(cached, prompt, strict=False):
                if a != b:
                    break
                n += 1
            return n

        free = [slot for slot in range(self.slots) if slot not in self._active]
        slot = max(free, key=lambda s: (shared(s), -self._last_used[s]))
        # At least the prompt's last token is decoded again: its logits start the answer.
        keep = min(shared(slot), len(prompt) - 1)
        if keep <= 0 or not llama_cpp.llama_memory_seq_rm(self._memory, slot, keep, -1):
            llama_cpp.llama_memory_seq_rm(self._memory, slot, -1, -1)
            keep = 0
        self._cached[slot] = prompt[:keep]
        self._admitted += 1
        self._last_used[slot] = self._admitted
        sequence.slot = slot
        sequence.fed = keep
        self.stats.reused_tokens += keep
        self._active[slot] = sequence

    def _drop(self, slot: int) -> None:
        """The stream keeps its cache: the next sequence may start where this one began."""
        sequence = self._active.pop(slot)
        sequence.sampler.close()

    def _drop_all(self) -> None:
        for slot in list(self._active):
            self._drop(slot)

    def _step(self, ready: list[_Sequence]) -> None:
        """One decode: either the next token of every generating sequence, or one joining
        sequence's prompt (as much of it as ``n_batch`` holds) by itself.

        Prompts go first, up to ``n_batch`` prompt tokens between two generation steps, so a
        stream of long prompts still leaves the others a step every ``n_batch`` tokens.
        Generation steps without a prompt in them are not cut into uneven micro-batches: with
        eight clients on two cores, about 8% more tokens/s than a prompt folded into each
        step, the 95th-percentile first token lower and the median a little higher. A prompt
        decoded by itself is decoded exactly as it would be alone; several prompts in one step
        (or a prompt ahead of another sequence's tokens) come out with different logits on
        quantized models, and made first tokens later when measured.

        Also measured, and not kept: at most one prompt between two generation steps (eight
        clients: median first token 0.19 s against 0.27 s, but the 95th percentile 0.61 s
        against 0.40 s and 8% fewer tokens/s); a batch line's prompt folded into the next
        generation step (a batch of eight-token lines 16% slower)."""
        prompting = [sequence for sequence in ready if sequence.fed < len(sequence.prompt)]
        generating = [sequence for sequence in ready if sequence.next_token is not None]
        if prompting and (not generating or self._prompt_tokens_in_a_row < self._n_batch):
            # The prompt that came first: sequences are admitted in lane and turn order.
            first = min(prompting, key=lambda sequence: self._last_used[sequence.slot])
            members, rows, n = self._fill_prompt(first)
            self._prompt_tokens_in_a_row += n
            kind = "prompt"
        elif generating:
            members, rows, n = self._fill_generating(generating)
            self._prompt_tokens_in_a_row = 0
            kind = "generate"
        else:
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
        stats.recent.append((kind, n))
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

    def _fill_generating(
        self, generating: list[_Sequence]
    ) -> tuple[list[_Sequence], list[tuple[_Sequence, int]], int]:
        """Put each sequence's next token in the batch (in slot order): the step's members,
        the rows to sample (sequence, batch index) and the token count."""
        rows = []
        for n, sequence in enumerate(generating):
            assert sequence.next_token is not None
            self._put(n, sequence.next_token, sequence.fed + sequence.sampled - 1, sequence)
            self._batch.logits[n] = True
            rows.append((sequence, n))
            sequence.next_token = None
        return generating, rows, len(generating)

    def _fill_prompt(
        self, sequence: _Sequence
    ) -> tuple[list[_Sequence], list[tuple[_Sequence, int]], int]:
        """Put the next ``n_batch`` tokens (at most) of ``sequence``'s prompt in the batch; its
        last row is sampled once the prompt is all in."""
        take = min(len(sequence.prompt) - sequence.fed, self._n_batch)
        for i in range(take):
            self._put(i, sequence.prompt[sequence.fed + i], sequence.fed + i, sequence)
        sequence.fed += take
        rows = []
        if sequence.fed == len(sequence.prompt):
            self._batch.logits[take - 1] = True
            rows.append((sequence, take - 1))
        return [sequence], rows, take

    def _put(self, index: int, token: int, position: int, sequence: _Sequence) -> None:
        self._cached[sequence.slot].append(token)
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
        already read): what to deliver to its reader."""
        if greedy is not None:
            token = greedy
        else:
            token = int(llama_cpp.llama_sampler_sample(sequence.sampler.sampler, self._ctx, row))
        # The logits of this step are gone after the next one: read logprobs now.
        entry = sequence.reader.entry(token, row) if sequence.reader is not None else None
        sequence.sampled += 1
        self.stats.sampled += 1
        if self._tokens.is_eog(token) or sequence.sampled >= sequence.max_tokens:
            sequence.finished = True
            return [(token, entry), _END]
        sequence.next_token = token
        return [(token, entry)]

    def _fail(self, sequences: list[_Sequence], exc: BaseException) -> None:
        for sequence in sequences:
            if not sequence.finished:
                sequence.finished = True
                sequence.next_token = None
                sequence.delivered.put(exc)
            # Its cache may hold part of the failed step: start that stream afresh.
            self._cached[sequence.slot] = []
            with contextlib.suppress(Exception):
                llama_cpp.llama_memory_seq_rm(self._memory, sequence.slot, -1, -1)
