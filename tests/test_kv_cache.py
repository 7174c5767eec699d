"""The KV-cache memory rule (``workers.kv_cache``): what a model keeps per token, the
cells its sliding-window layers take, and the context a memory budget leaves room for."""

from __future__ import annotations

from typing import Any

from workers.kv_cache import (
    MIN_DEFAULT_CONTEXT,
    KVLayout,
    default_context,
    keeps_full_window,
    kv_cache_bytes,
    kv_layout_of,
)

# Each layer of ``layout_of``'s headers: 4 KV heads of 64-wide keys and values, in f16.
LAYER = 4 * (64 + 64) * 2


def layout_of(arch: str, layers: int, **attention: Any) -> KVLayout:
    """The KV layout of a header with ``layers`` such layers and ``attention`` keys."""
    info = {
        f"{arch}.block_count": layers,
        f"{arch}.attention.head_count": 8,
        f"{arch}.attention.head_count_kv": 4,
        f"{arch}.attention.key_length": 64,
        f"{arch}.attention.value_length": 64,
        **{f"{arch}.attention.{key}": value for key, value in attention.items()},
    }
    return kv_layout_of(arch, info, 512)


def test_sliding_window_layers_are_told_apart_as_llama_cpp_tells_them() -> None:
    # Gemma 3: five window layers to one that keeps every token.
    assert layout_of("gemma3", 18, sliding_window=512) == KVLayout(3 * LAYER, 15 * LAYER, 512)
    # No window in the header: every layer keeps every token.
    assert layout_of("gemma3", 18) == KVLayout(18 * LAYER, 0, 0)
    # The header's own pattern, a count or a flag per layer, comes first.
    assert layout_of("gemma3", 18, sliding_window=512, sliding_window_pattern=3) == KVLayout(
        6 * LAYER, 12 * LAYER, 512
    )
    flags = [True, False, True, True]
    assert layout_of("llama", 4, sliding_window=128, sliding_window_pattern=flags) == KVLayout(
        LAYER, 3 * LAYER, 128
    )
    # "Dense first": the layer that keeps every token opens each group.
    assert layout_of("cohere2moe", 8, sliding_window=4096) == KVLayout(2 * LAYER, 6 * LAYER, 4096)
    # An architecture whose pattern is not known is counted whole: an overcount, never under.
    assert layout_of("mystery", 4, sliding_window=128) == KVLayout(4 * LAYER, 0, 0)


def test_the_window_layers_hold_each_sequences_window_and_a_step() -> None:
    layout = KVLayout(3 * LAYER, 15 * LAYER, 512)
    window_cells = 512 * 32 + 512  # as llama.cpp sizes them, a multiple of 256 already
    assert layout.cache_bytes(131072, 32) == 3 * LAYER * 131072 + 15 * LAYER * window_cells
    assert layout.cache_bytes(131072, 32, full_window=True) == 18 * LAYER * 131072
    # A cache smaller than the windows: every cell, in a whole 256.
    assert layout.cache_bytes(1000, 32) == 3 * LAYER * 1000 + 15 * LAYER * 1024
    assert KVLayout(LAYER, 0, 0).cache_bytes(1000, 32) == LAYER * 1000


def test_only_a_serial_engine_keeps_every_cell_in_its_window_layers() -> None:
    assert keeps_full_window(1)
    assert not keeps_full_window(2)
    layout = KVLayout(3 * LAYER, 15 * LAYER, 512)
    assert kv_cache_bytes(layout, 8192, 1) == 18 * LAYER * 8192
    assert kv_cache_bytes(layout, 8192, 4) == layout.cache_bytes(8192, 4)


def test_the_default_context_takes_the_windows_off_the_top() -> None:
    layout = KVLayout(3 * LAYER, 15 * LAYER, 512)
    windows = 15 * LAYER * (512 * 4 + 512)
    budget = 1000 + windows + 3 * LAYER * 2 * 10000
    # Two whole contexts of the whole layers fit in what the weights and windows leave.
    assert default_context(layout, 32768, 1000, budget, 2, 4) == 9984
    assert default_context(layout, 0, 1000, 0, 2, 4) == MIN_DEFAULT_CONTEXT
    assert default_context(layout, 2048, 1000, budget, 2, 4) == 2048
