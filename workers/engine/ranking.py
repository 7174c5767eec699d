"""Reranking: how relevant each document is to a query, scored by a reranker model.

A reranker is a GGUF whose header says rank pooling (llama.cpp's ``LLAMA_POOLING_TYPE_RANK``)
and which carries a classifier head (``cls`` / ``cls.output``): for each (query, document)
pair decoded as one sequence, llama.cpp pools the sequence (its first token, or its last for a
causal model) through the head, and the pooled "embedding" is the head's ``n_cls_out``
outputs, the first of which is the score, as llama-server's ``/v1/rerank`` reads it.

The pairs are laid out as llama-server lays them out (``format_prompt_rerank``): through the
model's ``rerank`` chat template where it has one (``{query}`` and ``{document}`` replaced),
else ``[BOS] query [EOS] [SEP] document [EOS]`` as the vocabulary adds them. As many pairs as
the ranking context holds go through one ``llama_decode``, each its own sequence.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from typing import Any

import llama_cpp
from llama_cpp import _internals

from workers.engine.events import EngineEvent, Ranked
from workers.engine.loading import Llama
from workers.engine.requests import RerankRequest

Send = Callable[[EngineEvent], bool]

# Pairs decoded together at most: llama.cpp's sequence ids in one context (it allows 256).
MAX_PAIRS_A_DECODE = 64


def is_reranker(llama: llama_cpp.Llama) -> bool:
    """Whether the model's header says rank pooling."""
    arch = llama.metadata.get("general.architecture", "")
    pooling = llama.metadata.get(f"{arch}.pooling_type")
    return pooling is not None and int(pooling) == llama_cpp.LLAMA_POOLING_TYPE_RANK


class Ranker(Llama):
    """A context for scoring pairs: rank pooling, ``n_ctx`` cells shared by up to
    ``MAX_PAIRS_A_DECODE`` sequences (one unified cache, so a long pair may take many and
    short ones few), every cell decoded in one micro-batch (a bidirectional model's pooling
    needs a sequence whole). One request at a time: a batched engine's slots share it."""

    def __init__(self, *args: Any, n_ctx: int, **kwargs: Any) -> None:
        super().__init__(
            *args,
            embedding=True,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_RANK,
            n_ctx=n_ctx,
            n_batch=n_ctx,
            n_ubatch=n_ctx,
            **kwargs,
        )
        self.turn = threading.Lock()
        params = llama_cpp.llama_context_params.from_buffer_copy(self.context_params)
        params.n_seq_max = MAX_PAIRS_A_DECODE
        params.kv_unified = True
        self._ctx.close()  # first, so that two caches never exist at once
        self._ctx = _internals.LlamaContext(model=self._model, params=params, verbose=False)


def pair_tokens(llama: llama_cpp.Llama, query: str, document: str) -> list[int]:
    """The tokens of one (query, document) pair, as llama-server lays them out."""
    template = llama.metadata.get("tokenizer.chat_template.rerank")
    if template:
        text = template.replace("{query}", query).replace("{document}", document)
        return llama.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    vocab = llama._model.vocab
    query_tokens = llama.tokenize(query.encode("utf-8"), add_bos=False, special=False)
    doc_tokens = llama.tokenize(document.encode("utf-8"), add_bos=False, special=False)
    eos = llama_cpp.llama_vocab_eos(vocab)
    if eos == llama_cpp.LLAMA_TOKEN_NULL:
        eos = llama_cpp.llama_vocab_sep(vocab)
    tokens: list[int] = []
    if llama_cpp.llama_vocab_get_add_bos(vocab):
        tokens.append(llama_cpp.llama_vocab_bos(vocab))
    tokens += query_tokens
    if llama_cpp.llama_vocab_get_add_eos(vocab):
        tokens.append(eos)
    if llama_cpp.llama_vocab_get_add_sep(vocab):
        tokens.append(llama_cpp.llama_vocab_sep(vocab))
    tokens += doc_tokens
    if llama_cpp.llama_vocab_get_add_eos(vocab):
        tokens.append(eos)
    return tokens


def decode_groups(lengths: list[int], cells: int, most: int) -> list[list[int]]:
    """The pairs (by index) each decode takes, in order: as many as ``cells`` tokens and
    ``most`` sequences hold together (a pair is cut to ``cells`` first)."""
    groups: list[list[int]] = []
    group: list[int] = []
    used = 0
    for index, length in enumerate(lengths):
        length = min(length, cells)
        if group and (used + length > cells or len(group) == most):
            groups.append(group)
            group, used = [], 0
        group.append(index)
        used += length
    if group:
        groups.append(group)
    return groups


def serve_rerank(ranker: Ranker, request: RerankRequest, send: Send) -> None:
    """Score each document of ``request`` against its query with the ranking context
    ``ranker``, in as few decodes as its cells allow."""
    with ranker.turn:
        pairs = [pair_tokens(ranker, request.query, doc) for doc in request.documents]
        cells = ranker.n_ctx()
        # A pair longer than the context keeps its start: the query and the document's head.
        pairs = [tokens[:cells] for tokens in pairs]
        most = int(llama_cpp.llama_n_seq_max(ranker._ctx.ctx))
        scores = [0.0] * len(pairs)
        for group in decode_groups([len(p) for p in pairs], cells, most):
            if request.cancel.cancelled_at_start():
                return
            for index, score in zip(
                group, _decode_pairs(ranker, [pairs[i] for i in group]), strict=True
            ):
                scores[index] = score
    send(Ranked(scores, sum(len(p) for p in pairs)))


def _decode_pairs(ranker: llama_cpp.Llama, pairs: list[list[int]]) -> list[float]:
    """One ``llama_decode`` of ``pairs``, each its own sequence; each pair's score."""
    ctx = ranker._ctx.ctx
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
    total = sum(len(p) for p in pairs)
    batch = llama_cpp.llama_batch_init(total, 0, 1)
    try:
        row = 0
        for seq_id, tokens in enumerate(pairs):
            for pos, token in enumerate(tokens):
                batch.token[row] = token
                batch.pos[row] = pos
                batch.n_seq_id[row] = 1
                batch.seq_id[row][0] = seq_id
                batch.logits[row] = True  # pooled over: every token is an output
                row += 1
        batch.n_tokens = total
        if llama_cpp.llama_decode(ctx, batch) != 0:
            raise RuntimeError("llama_decode failed while ranking")
        scores = []
        for seq_id in range(len(pairs)):
            pooled = llama_cpp.llama_get_embeddings_seq(ctx, seq_id)
            if not pooled:
                raise RuntimeError("the model gave no pooled output: is it a reranker?")
            scores.append(float(ctypes.cast(pooled, ctypes.POINTER(ctypes.c_float))[0]))
        return scores
    finally:
        llama_cpp.llama_batch_free(batch)
