"""The KV-cache memory rule, in one place: what a model keeps per token (``KVLayout``, read
from its GGUF header's keys), how many cells its sliding-window layers take, and the bytes a
cache of so many cells shared by so many sequences costs, in the cache type it is kept in
(``CacheType``: f16, or llama.cpp's q8_0 and q4_0 blocks, at their real size).

Three callers hold to the same numbers: the worker's memory budget and default context
(``workers.worker.residency``), what ``/api/ps`` shows of a model's size (the worker's
registry entry, from the same budget figures) and a model's header on the web side
(``models_app.gguf_metadata``), and the engine, which makes its contexts keep the window cells
counted here (``keeps_full_window``: ``workers.engine.stepper.shared_context``,
``workers.engine.factory``). Pure: no llama.cpp, no Django.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# llama.cpp's default tokens a step (``n_ubatch``): what Herd's contexts are made with.
UBATCH = 512

# The smallest default context: what HERD_NUM_CTX was before it followed the model.
MIN_DEFAULT_CONTEXT = 4096


@dataclass(frozen=True)
class CacheType:
    """How llama.cpp stores the KV cache's keys and values: ``block_bytes`` for each block of
    ``block`` values (ggml's ``type_size`` and ``blck_size``)."""

    name: str
    block: int
    block_bytes: int

    @property
    def quantized(self) -> bool:
        return self.block > 1

    def bytes_of(self, f16_bytes: int) -> int:
        """What a cache of ``f16_bytes`` in f16 (two bytes a value) takes in this type."""
        return f16_bytes // 2 * self.block_bytes // self.block


# The cache types Herd offers (``HERD_KV_CACHE_TYPE``, a record's ``kv_cache_type``), as
# Ollama's OLLAMA_KV_CACHE_TYPE: q8_0 keeps 32 values in 34 bytes (32 one-byte values and an
# f16 scale), q4_0 in 18 (32 half-byte values and the scale).
CACHE_TYPES: dict[str, CacheType] = {
    "f16": CacheType("f16", 1, 2),
    "q8_0": CacheType("q8_0", 32, 34),
    "q4_0": CacheType("q4_0", 32, 18),
}
F16 = CACHE_TYPES["f16"]


def cache_type(name: str) -> CacheType:
    """The cache type called ``name``. Raises ValueError naming the ones there are."""
    try:
        return CACHE_TYPES[name]
    except KeyError:
        known = ", ".join(CACHE_TYPES)
        raise ValueError(f"unknown KV cache type {name!r} (expected one of {known})") from None


@dataclass(frozen=True)
class KVLayout:
    """A model's KV cache per token: ``whole_bytes`` in the layers that keep every token of a
    sequence, ``window_bytes`` in those that keep only a sequence's last ``window`` tokens, in
    f16 unless ``in_type`` gave another type. ``head_width``: the widest block size every key
    and value head divides (0: unknown), which a quantized type's blocks must divide."""

    whole_bytes: int
    window_bytes: int
    window: int
    head_width: int = 0
    type_name: str = "f16"

    def holds(self, kind: CacheType) -> bool:
        """Whether llama.cpp can keep this model's heads in ``kind``: each head a whole
        number of its blocks (it refuses the context otherwise)."""
        return not kind.quantized or (self.head_width > 0 and self.head_width % kind.block == 0)

    def in_type(self, kind: CacheType) -> KVLayout:
        """The same cache kept in ``kind`` (this layout in f16)."""
        return KVLayout(
            kind.bytes_of(self.whole_bytes),
            kind.bytes_of(self.window_bytes),
            self.window,
            self.head_width,
            kind.name,
        )

    @property
    def bytes_per_token(self) -> int:
        """Every layer's bytes for one token: the cache of a context smaller than the window."""
        return self.whole_bytes + self.window_bytes

    def window_cells(self, sequences: int, *, full_window: bool = False) -> int | None:
        """The most cells the window layers take for ``sequences`` sequences in a unified
        cache: each sequence's window and a step's tokens (``UBATCH``), in whole 256s. None
        where they grow with the cache: no window, or ``full_window`` (llama.cpp's
        ``swa_full``) giving them every cell."""
        if not self.window or full_window:
            return None
        return _padded(self.window * sequences + UBATCH, 256)

    def cache_bytes(self, cells: int, sequences: int, *, full_window: bool = False) -> int:
        """The cache llama.cpp allocates for ``cells`` tokens shared by ``sequences``
        sequences (see ``window_cells``)."""
        most = self.window_cells(sequences, full_window=full_window)
        window_cells = cells if most is None else min(_padded(cells, 256), most)
        return self.whole_bytes * cells + self.window_bytes * window_cells


NO_LAYOUT = KVLayout(0, 0, 0)


def keeps_full_window(sequences: int) -> bool:
    """Whether a model decoding up to ``sequences`` at once keeps every cell in its
    sliding-window layers too (llama.cpp's ``swa_full``): a serial engine (one sequence) does,
    since llama-cpp-python's own prefix reuse expects it; a batched engine's shared context
    keeps each window only."""
    return sequences <= 1


def kv_cache_bytes(layout: KVLayout, cells: int, sequences: int) -> int:
    """The KV cache llama.cpp allocates for ``cells`` tokens of context shared by up to
    ``sequences`` sequences, with the window the engine keeps for that many."""
    return layout.cache_bytes(cells, sequences, full_window=keeps_full_window(sequences))


def default_context(
    layout: KVLayout, train_ctx: int, weights: int, budget: int, contexts: int, sequences: int
) -> int:
    """The model's own context (``train_ctx``; 0: unknown), cut down to what ``budget``
    (bytes; 0 for none) leaves after its ``weights`` for a KV cache of ``contexts`` whole
    contexts shared by up to ``sequences`` sequences, in steps of 256 tokens and never below
    ``MIN_DEFAULT_CONTEXT``, as Ollama sizes a context from the model and the machine."""
    train_ctx = train_ctx or MIN_DEFAULT_CONTEXT
    per_token, windows = layout.bytes_per_token, 0
    most = layout.window_cells(sequences, full_window=keeps_full_window(sequences))
    if most is not None:
        # The window layers' cells stop growing at their most: that comes off the top.
        per_token, windows = layout.whole_bytes, layout.window_bytes * most
    if not budget or not per_token:
        return train_ctx
    room = budget - weights - windows
    fits = room // (per_token * max(1, contexts)) // 256 * 256
    return min(train_ctx, max(fits, MIN_DEFAULT_CONTEXT))


def cache_type_for(layout: KVLayout, wanted: str) -> CacheType:
    """The cache type a model of ``layout`` (in f16) is given when ``wanted`` is asked for:
    that type where its heads hold it, else f16."""
    kind = cache_type(wanted)
    return kind if layout.holds(kind) else F16


def kv_layout_of(architecture: str, info: Mapping[str, Any], embedding_length: int) -> KVLayout:
    """What llama.cpp keeps in the KV cache for each token (keys and values in f16) of a model
    whose GGUF header holds ``info``, in the layers that attend to every earlier token and in
    those that attend to a window of the last ones. All zero for a model without attention
    heads."""
    arch = architecture
    layers = int(info.get(f"{arch}.block_count", 0) or 0)
    heads = _per_layer(info.get(f"{arch}.attention.head_count", 0), layers)
    heads_kv = _per_layer(info.get(f"{arch}.attention.head_count_kv"), layers) or heads
    most_heads = max(heads, default=0)
    head_dim = embedding_length // most_heads if most_heads else 0
    key_length = int(info.get(f"{arch}.attention.key_length", head_dim) or 0)
    value_length = int(info.get(f"{arch}.attention.value_length", head_dim) or 0)
    per_layer = [n * (key_length + value_length) * 2 for n in heads_kv]
    head_width = math.gcd(key_length, value_length, 256)
    window = int(info.get(f"{arch}.attention.sliding_window", 0) or 0)
    windowed = _windowed_layers(info, arch, len(per_layer)) if window else []
    if not any(windowed):
        return KVLayout(sum(per_layer), 0, 0, head_width)
    return KVLayout(
        sum(b for b, w in zip(per_layer, windowed, strict=True) if not w),
        sum(b for b, w in zip(per_layer, windowed, strict=True) if w),
        window,
        head_width,
    )


# Which layers of an architecture attend to a sliding window, as llama.cpp decides when the
# header does not say (``load_swa_pattern`` in its models): in every group of ``n`` layers one
# attends to every token, the last of the group or, "dense first", the first. An architecture
# not named here has every layer counted whole: the budget may then overcount, never under.
_WINDOW_PATTERNS: dict[str, tuple[int, bool]] = {
    "gemma2": (2, False),
    "gemma3": (6, False),
    "gemma3n": (5, False),
    "gemma-embedding": (6, False),
    "cohere2": (4, False),
    "cohere2moe": (4, True),
    "exaone4": (4, False),
    "gpt-oss": (2, False),
    "olmo2": (4, False),
}


def _windowed_layers(info: Mapping[str, Any], arch: str, layers: int) -> list[bool]:
    """Per layer, whether it attends to a sliding window (``info`` has a window size)."""
    given = info.get(f"{arch}.attention.sliding_window_pattern")
    if isinstance(given, list | tuple) and len(given) == layers:
        return [bool(flag) for flag in given]
    known = _WINDOW_PATTERNS.get(arch)
    if known is None:
        return [False] * layers
    n, dense_first = known
    if isinstance(given, int):
        n = given
    if n == 0:
        return [True] * layers
    return [(i % n != 0) if dense_first else (i % n < n - 1) for i in range(layers)]


def _per_layer(value: Any, layers: int) -> list[int]:
    """A header value given once for every layer or as one value per layer, per layer."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [int(v) for v in value]
    return [int(value)] * layers


def _padded(n: int, to: int) -> int:
    return (n + to - 1) // to * to
