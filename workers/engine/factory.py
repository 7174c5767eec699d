"""The engine a resident model gets: serial for one sequence at a time, batched for more."""

from __future__ import annotations

import llama_cpp

from workers.engine.batched import BatchedEngine
from workers.engine.jobs import Engine, SerialEngine


def make_engine(name: str, llama: llama_cpp.Llama, parallel: int, cache_sequences: int) -> Engine:
    """A serial engine for one sequence at a time, else a batched one running up to
    ``parallel`` at once in a KV cache of ``cache_sequences`` whole contexts (it rebuilds
    ``llama``'s context to hold them)."""
    if parallel <= 1:
        return SerialEngine(name, llama)
    return BatchedEngine(name, llama, parallel, cache_sequences)
