"""Log-probabilities of sampled tokens, read from the logits of the step that chose them.

Only computed when a request asks (``logprobs``): a softmax over the vocabulary per token is
cheap next to a decode, but not free.
"""

from __future__ import annotations

from typing import Any, TypedDict

import llama_cpp
import numpy as np


class TokenLogprob(TypedDict):
    """One token's log-probability, as OpenAI's ``top_logprobs`` entries give it."""

    token: str
    logprob: float
    bytes: list[int]


class LogprobEntry(TokenLogprob):
    """A sampled token's entry: its own log-probability and the most likely tokens there."""

    top_logprobs: list[TokenLogprob]


class LogprobReader:
    """Reads the last decode step's logits straight from the llama context (no copy into
    Python lists) and turns them into the OpenAI/Ollama logprob entry of one token."""

    def __init__(self, llama: llama_cpp.Llama, top_n: int, piece: Any) -> None:
        self._ctx = llama._ctx.ctx
        self._n_vocab = llama.n_vocab()
        self._top_n = top_n
        self._piece = piece  # token id -> bytes

    def entry(self, token: int, row: int = -1) -> LogprobEntry:
        """``row``: the batch position whose logits sampled ``token`` (-1: the last one)."""
        # After generate() yields a token, the context still holds the logits that sampled it
        # (the next decode happens when the loop asks for the next token); the batched engine
        # reads each sequence's row before its next step.
        pointer = llama_cpp.llama_get_logits_ith(self._ctx, row)
        logits = np.ctypeslib.as_array(pointer, shape=(self._n_vocab,)).astype(np.float64)
        peak = logits.max()
        logprobs = logits - (peak + np.log(np.exp(logits - peak).sum()))
        top: list[TokenLogprob] = []
        if self._top_n > 0:
            best = np.argpartition(-logprobs, self._top_n - 1)[: self._top_n]
            best = best[np.argsort(-logprobs[best])]
            top = [self._token(int(t), float(logprobs[t])) for t in best]
        chosen = self._token(token, float(logprobs[token]))
        return LogprobEntry(
            token=chosen["token"],
            logprob=chosen["logprob"],
            bytes=chosen["bytes"],
            top_logprobs=top,
        )

    def _token(self, token: int, logprob: float) -> TokenLogprob:
        raw: bytes = self._piece(token)
        return TokenLogprob(
            token=raw.decode("utf-8", errors="replace"), logprob=logprob, bytes=list(raw)
        )
