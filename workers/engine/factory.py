"""Building a resident model's engine: the llama.cpp context, then a serial engine for one
sequence at a time or a batched one for more (``EngineConfig`` says which and how big)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import llama_cpp

from workers.engine.batched import BatchedEngine
from workers.engine.jobs import Engine, SerialEngine
from workers.engine.loading import Llama
from workers.engine.media import Projector, ProjectorError
from workers.engine.ranking import Ranker, is_reranker
from workers.engine.requests import ModelProfile
from workers.engine.stepper import sequence_context
from workers.kv_cache import cache_type, keeps_full_window

log = logging.getLogger(__name__)

# The ggml tensor type of each KV cache type (``workers.kv_cache.CACHE_TYPES``).
_GGML_TYPES = {
    "f16": llama_cpp.GGML_TYPE_F16,
    "q8_0": llama_cpp.GGML_TYPE_Q8_0,
    "q4_0": llama_cpp.GGML_TYPE_Q4_0,
}

# Tokens an embedding input may hold (see ``_embedder``); longer inputs are truncated, or
# refused when the request says ``truncate: false``.
EMBEDDING_CONTEXT = 4096


@dataclass(frozen=True)
class EngineConfig:
    """How to load a model: its file, the context each sequence holds (``n_ctx``), the
    threads and GPU layers, llama.cpp's weight repacking (``workers.engine.loading``), and
    how many sequences decode at once (``parallel``) in a KV cache of how many whole contexts
    (``cache_sequences``), kept in which type (``kv_cache_type``, a name of
    ``workers.kv_cache.CACHE_TYPES``), and the vision projector beside the model
    (``projector``, a path; empty: none)."""

    name: str
    path: str
    n_ctx: int
    threads: int
    gpu_layers: int = 0
    repack: bool = True
    parallel: int = 1
    cache_sequences: int = 1
    kv_cache_type: str = "f16"
    projector: str = ""


def load_engine(config: EngineConfig, profile: ModelProfile | None = None) -> Engine:
    """Load the model of ``config`` and start its engine."""
    # llama.cpp keeps a quantized V cache only with flash attention, and refuses the context
    # without it (llama-cpp-python turns it off unless asked).
    quantized = cache_type(config.kv_cache_type).quantized
    if quantized:
        log.info(
            "%s: flash attention on, as llama.cpp needs it for a %s V cache",
            config.name,
            config.kv_cache_type,
        )
    llama = Llama(
        model_path=config.path,
        repack=config.repack,
        n_ctx=config.n_ctx,
        n_threads=config.threads,
        n_threads_batch=config.threads,
        n_gpu_layers=config.gpu_layers,
        # A batched engine replaces this context at once (``shared_context``): no need to
        # fill a full-size sliding-window cache first.
        swa_full=keeps_full_window(config.parallel),
        type_k=_GGML_TYPES[config.kv_cache_type],
        type_v=_GGML_TYPES[config.kv_cache_type],
        flash_attn=quantized,
        verbose=False,
    )
    n_ctx = sequence_context(llama)
    # A reranker's pooled output is its classifier's scores: its second context ranks pairs.
    second = _ranker if is_reranker(llama) else _embedder
    projector = None
    if config.projector:
        try:
            projector = Projector.load(
                config.projector, llama, config.threads, use_gpu=config.gpu_layers != 0
            )
        except ProjectorError:
            llama.close()
            raise
    engine = make_engine(
        config.name,
        llama,
        config.parallel,
        config.cache_sequences,
        profile,
        embedder=lambda: second(config, n_ctx),
    )
    engine.projector = projector
    return engine


def make_engine(
    name: str,
    llama: llama_cpp.Llama,
    parallel: int,
    cache_sequences: int,
    profile: ModelProfile | None = None,
    embedder: Callable[[], llama_cpp.Llama] | None = None,
) -> Engine:
    """A serial engine for one sequence at a time, else a batched one running up to
    ``parallel`` at once in a KV cache of ``cache_sequences`` whole contexts (it rebuilds
    ``llama``'s context to hold them)."""
    if parallel <= 1:
        return SerialEngine(name, llama, profile, embedder)
    return BatchedEngine(name, llama, parallel, cache_sequences, profile, embedder)


class _SharedEmbedder(Llama):
    """The embedding context, used by whichever engine slot runs an embeddings request: one
    call at a time, since a batched engine runs several requests at once."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._turn = threading.Lock()

    def embed(self, *args: Any, **kwargs: Any) -> Any:
        with self._turn:
            return super().embed(*args, **kwargs)


def _embedder(config: EngineConfig, n_ctx: int) -> llama_cpp.Llama:
    """A second context on the same (memory-mapped, so shared) weights, set up for pooled
    embeddings."""
    # A pooled embedding decodes its whole input in one micro-batch, whose compute buffer
    # grows with the square of its length: a model's own context (32k for the demo model)
    # fails to allocate, so the embedder holds at most this much.
    size = min(n_ctx, EMBEDDING_CONTEXT)
    return _SharedEmbedder(
        model_path=config.path,
        repack=config.repack,
        embedding=True,
        n_ctx=size,
        n_batch=size,
        n_ubatch=size,
        n_threads=config.threads,
        n_threads_batch=config.threads,
        pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
        verbose=False,
    )


def _ranker(config: EngineConfig, n_ctx: int) -> llama_cpp.Llama:
    """A second context on the same weights, for scoring (query, document) pairs
    (``workers.engine.ranking``), as big as an embedder's for the same reason."""
    return Ranker(
        model_path=config.path,
        repack=config.repack,
        n_ctx=min(n_ctx, EMBEDDING_CONTEXT),
        n_threads=config.threads,
        n_threads_batch=config.threads,
        verbose=False,
    )
