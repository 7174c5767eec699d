"""Where a generation's tokens come from: a slot of an engine.

Every engine hands each request a ``Slot``; ``workers.engine.generation.run_generation`` asks
it for tokens the same way on every engine. A serial engine's one ``SerialSlot`` runs
llama-cpp-python's own ``generate`` (its prefix reuse and sampler chain); each ``BatchSlot`` of
a batched engine joins the model's shared decode steps (``workers.engine.stepper``) with a
sampler chain of its own. The slot is passed in, never looked up: nothing reroutes a
generation behind its caller's back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol

import llama_cpp

from workers.engine.generation import grammar_for, is_plain_greedy, sampler_for
from workers.engine.logprobs import LogprobEntry, LogprobReader
from workers.engine.requests import SamplingOptions
from workers.engine.stepper import Stepper

if TYPE_CHECKING:
    from workers.engine.media import MediaPrompt

# A sampled token and its logprob entry (None unless the request asked for logprobs).
Sampled = tuple[int, LogprobEntry | None]


class Tokens(Protocol):
    """A slot's tokens for one generation (the end-of-generation token included)."""

    def __iter__(self) -> Iterator[Sampled]: ...

    @property
    def cached_tokens(self) -> int:
        """Prompt tokens found in the KV cache rather than decoded."""
        ...


class Slot(Protocol):
    """One sequence of an engine: ``llama`` for tokenizing and reading the vocabulary,
    ``generate`` for the tokens of one generation."""

    llama: llama_cpp.Llama
    index: int

    def generate(
        self,
        prompt: list[int],
        options: SamplingOptions,
        max_tokens: int,
        reader: LogprobReader | None,
        cancelled: Callable[[], bool] | None,
        media: MediaPrompt | None = None,
    ) -> Any:
        """A context manager giving ``Tokens``: decode ``prompt`` (its images through
        ``media``) and sample with ``options``, up to ``max_tokens``; leaving the block frees
        the slot."""
        ...


class _SerialTokens:
    def __init__(self, tokens: Iterator[Sampled], cached: int) -> None:
        self._tokens = tokens
        self.cached_tokens = cached

    def __iter__(self) -> Iterator[Sampled]:
        return self._tokens


class SerialSlot:
    """The one slot of a serial engine: llama-cpp-python's ``generate`` on the whole
    context."""

    def __init__(self, llama: llama_cpp.Llama) -> None:
        self.llama = llama
        self.index = 0
        self.interactive = True

    @contextmanager
    def generate(
        self,
        prompt: list[int],
        options: SamplingOptions,
        max_tokens: int,
        reader: LogprobReader | None,
        cancelled: Callable[[], bool] | None = None,
        media: MediaPrompt | None = None,
    ) -> Iterator[_SerialTokens]:
        llama = self.llama
        # What llama.generate keeps of its context: the start it shares with the prompt,
        # less the prompt's last token, whose logits it decodes again.
        held = llama._input_ids[: llama.n_tokens].tolist()
        cached = min(llama.longest_token_prefix(held, prompt), len(prompt) - 1)
        if media is not None:
            cached = media.keep(max(0, cached))
            _prefill(llama, media, cached)
        yield _SerialTokens(_serial_tokens(llama, prompt, options, reader), max(0, cached))


def _prefill(llama: llama_cpp.Llama, media: MediaPrompt, cached: int) -> None:
    """Decode a prompt with images from ``cached`` on, but for its last token: text through
    ``llama.eval``, each image through the projector, with its placeholder ids written where
    llama-cpp-python keeps the context's tokens. ``llama.generate`` then finds all of it
    cached, decodes the last token and samples, as for a prompt of text."""
    llama._ctx.kv_cache_seq_rm(-1, cached, -1)
    llama.n_tokens = cached
    prompt = media.tokens
    end = len(prompt) - 1
    while llama.n_tokens < end:
        at = llama.n_tokens
        span = media.span_at(at)
        if span is None:
            llama.eval(prompt[at : min(media.text_end(at), end)])
            continue
        media.projector.decode(llama._ctx.ctx, span, at, 0, llama.n_batch)
        llama.input_ids[at : at + span.length] = prompt[at : at + span.length]
        llama.n_tokens = at + span.length


def _serial_tokens(
    llama: llama_cpp.Llama,
    prompt_tokens: list[int],
    options: SamplingOptions,
    reader: LogprobReader | None,
) -> Iterator[Sampled]:
    llama.set_seed(options.seed if options.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED)
    tokens = llama.generate(
        prompt_tokens,
        top_k=options.top_k,
        top_p=options.top_p,
        min_p=options.min_p,
        temp=options.temperature,
        repeat_penalty=options.repeat_penalty,
        presence_penalty=options.presence_penalty,
        frequency_penalty=options.frequency_penalty,
        grammar=grammar_for(options.response_format),
    )
    for token in tokens:
        # Read while the context still holds the logits that sampled this token.
        yield token, reader.entry(token) if reader is not None else None


class BatchSlot:
    """One of a batched engine's sequences: its generations join the stepper's steps."""

    def __init__(self, stepper: Stepper, index: int) -> None:
        self._stepper = stepper
        self.llama = stepper.llama
        self.index = index
        self.interactive = True  # the lane of the request on this slot: set as each starts

    @contextmanager
    def generate(
        self,
        prompt: list[int],
        options: SamplingOptions,
        max_tokens: int,
        reader: LogprobReader | None,
        cancelled: Callable[[], bool] | None = None,
        media: MediaPrompt | None = None,
    ) -> Iterator[Tokens]:
        """The stepper owns the sampler chain from here; ``cancelled`` is read before each
        step, so a cancelled sequence leaves between its prompt's pieces too."""
        stream = self._stepper.start(
            prompt,
            sampler_for(self.llama, options),
            max_tokens,
            reader,
            is_plain_greedy(options),
            interactive=self.interactive,
            cancelled=cancelled,
            media=media,
        )
        try:
            yield stream
        finally:
            stream.close()
