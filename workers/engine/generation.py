"""One generation on a slot of an engine: sampling set-up, the token loop, stop strings,
limits and cancellation. The slot (``workers.engine.slots``) says where the tokens come from:
``llama.generate`` on a serial engine's one slot (never concurrently on one Llama), the model's
shared decode steps on a batched engine's (``workers.engine.stepper``), each sequence sampling
with a chain of its own. Either way the same loop here turns them into text.
"""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import llama_cpp
from llama_cpp import _internals
from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

from workers.engine.logprobs import LogprobEntry, LogprobReader
from workers.engine.requests import SamplingOptions
from workers.engine.stepper import sequence_context
from workers.engine.vocabulary import Vocabulary, vocabulary

if TYPE_CHECKING:
    from workers.engine.media import MediaPrompt
    from workers.engine.slots import Slot

__all__ = ["Emit", "GenerationResult", "RequestRejected", "SamplingOptions", "run_generation"]


class RequestRejected(ValueError):
    """The request cannot run on this model (prompt too long, bad template): a 400."""

    def __init__(self, message: str, *, code: str, param: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.param = param


@dataclass
class GenerationResult:
    finish_reason: str  # "stop" | "length" | "cancelled"
    prompt_tokens: int
    completion_tokens: int
    prompt_eval_ns: int = 0
    eval_ns: int = 0
    text: list[str] = field(default_factory=list)
    # Prompt tokens found in the KV cache (a shared start: an earlier turn, the same system
    # prompt) rather than decoded.
    cached_tokens: int = 0
    # The request's stop string that ended the answer ("stop" from EOG leaves it None).
    stop_sequence: str | None = None


# Emit receives each piece of text, how many tokens it holds and (when the request asked for
# them) those tokens' logprob entries; it returns False to cancel.
Emit = Callable[[str, int, list[LogprobEntry] | None], bool]


@lru_cache(maxsize=64)
def _grammar(kind: str, schema_json: str) -> LlamaGrammar:
    if kind == "json_object":
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    return LlamaGrammar.from_json_schema(schema_json, verbose=False)


def grammar_for(response_format: dict[str, Any] | None) -> LlamaGrammar | None:
    if not response_format or response_format.get("type") == "text":
        return None
    kind = response_format["type"]
    schema = response_format.get("schema") or {}
    # The schema's own key order: the grammar writes properties in the order it lists them,
    # and clients rely on it (a "reasoning" property before the answer).
    return _grammar(kind, json.dumps(schema))


def check_grammar(llama: llama_cpp.Llama, response_format: dict[str, Any] | None) -> None:
    """Raises RequestRejected when llama.cpp cannot make a grammar of the request's schema:
    its converter refuses some valid JSON schemas (``{"foo": {}}``), and a grammar its parser
    refuses would leave the sampler chain without one. ``response_format["param"]`` names the
    request field the schema came from."""
    if not response_format or response_format.get("type") == "text":
        return
    param = response_format.get("param") or "response_format"
    try:
        grammar = grammar_for(response_format)
    except Exception as exc:  # the converter's refusals are asserts, ValueErrors and more
        raise RequestRejected(
            f"{param}: llama.cpp cannot turn this JSON schema into a grammar ({exc})",
            code="invalid_schema",
            param=param,
        ) from exc
    if grammar is None:
        return
    sampler = llama_cpp.llama_sampler_init_grammar(
        llama._model.vocab, grammar._grammar.encode("utf-8"), grammar._root.encode("utf-8")
    )
    if not sampler:
        raise RequestRejected(
            f"{param}: llama.cpp cannot parse the grammar this JSON schema makes",
            code="invalid_schema",
            param=param,
        )
    llama_cpp.llama_sampler_free(sampler)


def check_tokens(llama: llama_cpp.Llama, tokens: list[int], param: str) -> list[int]:
    """``tokens`` when each is in the model's vocabulary; raises RequestRejected otherwise."""
    n_vocab = llama.n_vocab()
    bad = next((t for t in tokens if not 0 <= t < n_vocab), None)
    if bad is not None:
        raise RequestRejected(
            f"{param}: token {bad} is not in this model's vocabulary of {n_vocab}",
            code="invalid_value",
            param=param,
        )
    return tokens


def infill_tokens(llama: llama_cpp.Llama, prefix: list[int], suffix: str) -> list[int]:
    """The prompt that asks for the text between ``prefix`` (tokens, without BOS) and
    ``suffix``, in llama.cpp's fill-in-the-middle layout: ``[BOS] PRE prefix SUF suffix MID``.
    Raises RequestRejected for a model without FIM tokens."""
    model = llama._model
    pre, suf, mid = model.token_prefix(), model.token_suffix(), model.token_middle()
    if min(pre, suf, mid) < 0:
        raise RequestRejected(
            "suffix: this model has no fill-in-the-middle tokens, so it cannot complete "
            "between a prompt and a suffix",
            code="unsupported_parameter",
            param="suffix",
        )
    bos = [llama.token_bos()] if model.add_bos_token() and llama.token_bos() >= 0 else []
    suffix_tokens = llama.tokenize(suffix.encode("utf-8"), add_bos=False, special=False)
    return [*bos, pre, *prefix, suf, *suffix_tokens, mid]


def tokenize_prompt(llama: llama_cpp.Llama, prompt: str, *, first: bool = True) -> list[int]:
    """Tokenize with special tokens parsed; add BOS unless the template already wrote it (or
    the text is not the prompt's ``first`` piece: the text after an image)."""
    bos_text = llama._model.token_get_text(llama.token_bos()) if llama.token_bos() >= 0 else ""
    add_bos = (
        first and llama._model.add_bos_token() and not (bos_text and prompt.startswith(bos_text))
    )
    return llama.tokenize(prompt.encode("utf-8"), add_bos=add_bos, special=True)


def tokenize_chat(
    llama: llama_cpp.Llama, prompt: str, contents: Sequence[str], *, first: bool = True
) -> list[int]:
    """The tokens of a chat ``prompt`` the template rendered, with the messages' ``contents``
    (in the order the template wrote them) read as text: a control token's text written in
    a message (``<end_of_turn>``, ``</s>``) stays text, so no message can close its turn and
    open a forged one; only the template's own markup yields control tokens. A prompt whose
    contents hold no such text tokenizes as ``tokenize_prompt`` does, token for token. A piece
    that is not the prompt's ``first`` (the text after an image) gets no BOS."""
    spans: list[tuple[int, int]] = []
    at = 0
    for content in contents:
        found = _locate(prompt, content, at)
        if found is None:
            continue  # a template that rewrites a content: nothing of it to find
        start, at = found
        piece = prompt[start:at].encode("utf-8")
        if llama.tokenize(piece, add_bos=False, special=True) != llama.tokenize(
            piece, add_bos=False, special=False
        ):
            spans.append(found)
    if not spans:
        return tokenize_prompt(llama, prompt, first=first)
    tokens = tokenize_prompt(llama, prompt[: spans[0][0]], first=first)
    edge = spans[0][0]
    for start, end in spans:
        if start > edge:
            markup = prompt[edge:start].encode("utf-8")
            tokens += llama.tokenize(markup, add_bos=False, special=True)
        tokens += llama.tokenize(prompt[start:end].encode("utf-8"), add_bos=False, special=False)
        edge = end
    if edge < len(prompt):
        tokens += llama.tokenize(prompt[edge:].encode("utf-8"), add_bos=False, special=True)
    return tokens


def _locate(prompt: str, content: str, start: int) -> tuple[int, int] | None:
    """Where ``content`` (or, as a template that trims it writes it, its stripped text) is in
    ``prompt`` from ``start`` on."""
    for text in (content, content.strip()):
        if text:
            found = prompt.find(text, start)
            if found >= 0:
                return found, found + len(text)
    return None


def check_prompt_fits(llama: llama_cpp.Llama, tokens: list[int], param: str) -> None:
    if not tokens:
        raise RequestRejected("the prompt is empty", code="empty_prompt", param=param)
    n_ctx = sequence_context(llama)
    if len(tokens) >= n_ctx:
        raise RequestRejected(
            f"This model's maximum context length is {n_ctx} tokens; the prompt has "
            f"{len(tokens)} tokens.",
            code="context_length_exceeded",
            param=param,
        )


class _StopScanner:
    """Holds back text that might be the start of a stop string, so that no stop string
    (or a prefix of one that completes later) is ever emitted."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._stops = [s for s in stops if s]
        self._pending = ""
        # The stop string that ended the text (the earliest in it), once one has.
        self.matched: str | None = None

    def feed(self, text: str) -> tuple[str, bool]:
        """Returns (text safe to emit, whether a stop string was reached)."""
        self._pending += text
        if not self._stops:
            out, self._pending = self._pending, ""
            return out, False
        hits = [(i, s) for s, i in ((s, self._pending.find(s)) for s in self._stops) if i >= 0]
        if hits:
            at, self.matched = min(hits, key=lambda hit: hit[0])
            out = self._pending[:at]
            self._pending = ""
            return out, True
        hold = 0
        for stop in self._stops:
            for n in range(min(len(stop) - 1, len(self._pending)), 0, -1):
                if self._pending.endswith(stop[:n]):
                    hold = max(hold, n)
                    break
        cut = len(self._pending) - hold
        out, self._pending = self._pending[:cut], self._pending[cut:]
        return out, False

    def flush(self) -> str:
        out, self._pending = self._pending, ""
        return out


def sampler_for(llama: llama_cpp.Llama, options: SamplingOptions) -> _internals.LlamaSampler:
    """The sampler chain ``llama.generate`` would build for ``options``, for one sequence of a
    batched engine: penalties, the grammar, then greedy or top-k/typical/top-p/min-p/temp/dist
    with the request's own seed (so one sequence's seed never moves another's)."""
    seed = options.seed if options.seed is not None else llama_cpp.LLAMA_DEFAULT_SEED
    sampler = _internals.LlamaSampler()
    sampler.add_penalties(
        n_vocab=llama.n_vocab(),
        penalty_last_n=llama.last_n_tokens_size,
        penalty_repeat=options.repeat_penalty,
        penalty_freq=options.frequency_penalty,
        penalty_present=options.presence_penalty,
    )
    grammar = grammar_for(options.response_format)
    if grammar is not None:
        sampler.add_grammar(llama._model, grammar)
    if options.temperature < 0.0:
        sampler.add_dist(seed)
    elif options.temperature == 0.0:
        sampler.add_greedy()
    else:
        sampler.add_top_k(options.top_k)
        sampler.add_typical(1.0, 1)
        sampler.add_top_p(options.top_p, 1)
        sampler.add_min_p(options.min_p, 1)
        sampler.add_temp(options.temperature)
        sampler.add_dist(seed)
    return sampler


def is_plain_greedy(options: SamplingOptions) -> bool:
    """Whether ``sampler_for(options)`` is greedy with nothing before it that moves a logit:
    neutral penalties and no grammar."""
    return (
        options.temperature == 0.0
        and options.repeat_penalty == 1.0
        and options.presence_penalty == 0.0
        and options.frequency_penalty == 0.0
        and grammar_for(options.response_format) is None
    )


def run_generation(
    slot: Slot,
    prompt_tokens: list[int],
    options: SamplingOptions,
    emit: Emit,
    cancelled: Callable[[], bool] | None = None,
    media: MediaPrompt | None = None,
) -> GenerationResult:
    """Generate from ``prompt_tokens`` on ``slot`` until EOG, a stop string, ``max_tokens``,
    the context end, until ``emit`` returns False or ``cancelled()`` is true. Text goes out
    through ``emit`` as whole UTF-8 characters. A prompt with images comes with its
    ``media`` (``prompt_tokens`` is then ``media.tokens``)."""
    llama = slot.llama
    max_tokens = min(options.max_tokens, sequence_context(llama) - len(prompt_tokens))
    tokens_of = vocabulary(llama)
    # Logprobs cost a softmax over the vocabulary per token: only when asked.
    reader = (
        LogprobReader(llama, options.top_logprobs, tokens_of.piece) if options.logprobs else None
    )
    started = time.perf_counter_ns()
    # At least one token, as llama.generate gives before the loop can count.
    with slot.generate(
        prompt_tokens, options, max(1, max_tokens), reader, cancelled, media
    ) as tokens:
        result = _consume(
            tokens, len(prompt_tokens), max_tokens, options, tokens_of, emit, started, cancelled
        )
        result.cached_tokens = tokens.cached_tokens
        return result


def _consume(
    tokens: Iterable[tuple[int, LogprobEntry | None]],
    prompt_length: int,
    max_tokens: int,
    options: SamplingOptions,
    tokens_of: Vocabulary,
    emit: Emit,
    started: int,
    cancelled: Callable[[], bool] | None = None,
) -> GenerationResult:
    """The token loop every slot shares: EOG, stop strings, limits, cancellation."""
    result = GenerationResult("length", prompt_length, 0)
    scanner = _StopScanner(options.stop)
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
    pending_tokens = 0
    pending_logprobs: list[LogprobEntry] | None = [] if options.logprobs else None
    first_token_at = started
    for token, logprob in tokens:
        if cancelled is not None and cancelled():
            result.finish_reason = "cancelled"
            break
        if result.completion_tokens == 0:
            first_token_at = time.perf_counter_ns()
        if tokens_of.is_eog(token):
            result.finish_reason = "stop"
            break
        result.completion_tokens += 1
        pending_tokens += 1
        if pending_logprobs is not None and logprob is not None:
            pending_logprobs.append(logprob)
        # Incremental: a character split across tokens waits for its last byte; a byte that
        # can never be valid UTF-8 becomes U+FFFD instead of stalling the stream.
        text = utf8.decode(tokens_of.piece(token))
        if text:
            safe, stopped = scanner.feed(text)
            if stopped:
                result.finish_reason = "stop"
                result.stop_sequence = scanner.matched
                if safe:
                    result.text.append(safe)
                    emit(safe, pending_tokens, pending_logprobs)
                break
            if safe:
                result.text.append(safe)
                if not emit(safe, pending_tokens, pending_logprobs):
                    result.finish_reason = "cancelled"
                    break
                pending_tokens = 0
                if pending_logprobs:
                    pending_logprobs = []
        if result.completion_tokens >= max_tokens:
            break
    else:
        # A stream the engine ended because the request was cancelled ends here too.
        result.finish_reason = "cancelled" if cancelled is not None and cancelled() else "stop"
    if result.finish_reason != "cancelled":
        # Held-back text that never completed a stop string belongs to the answer.
        rest = scanner.flush() + utf8.decode(b"", final=True)
        # Tokens not yet sent go out too, with no text if they had none (a control token
        # sampled last writes nothing), so their logprob entries are not lost.
        if rest or pending_tokens:
            result.text.append(rest)
            emit(rest, pending_tokens, pending_logprobs)
    finished = time.perf_counter_ns()
    result.prompt_eval_ns = first_token_at - started
    result.eval_ns = finished - first_token_at
    return result
