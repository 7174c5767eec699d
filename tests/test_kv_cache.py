"""The KV-cache memory rule (``workers.kv_cache``): what a model keeps per token, the
cells its sliding-window layers take, and the context a memory budget leaves room for."""

from __future__ import annotations

from typing import Any

import pytest

from workers.kv_cache import (
    CACHE_TYPES,
    F16,
    MIN_DEFAULT_CONTEXT,
    KVLayout,
    cache_type,
    cache_type_for,
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
    # (Each layout also carries the width of its 64-value heads.)
    assert layout_of("gemma3", 18, sliding_window=512) == KVLayout(3 * LAYER, 15 * LAYER, 512, 64)
    # No window in the header: every layer keeps every token.
    assert layout_of("gemma3", 18) == KVLayout(18 * LAYER, 0, 0, 64)
    # The header's own pattern, a count or a flag per layer, comes first.
    assert layout_of("gemma3", 18, sliding_window=512, sliding_window_pattern=3) == KVLayout(
        6 * LAYER, 12 * LAYER, 512, 64
    )
    flags = [True, False, True, True]
    assert layout_of("llama", 4, sliding_window=128, sliding_window_pattern=flags) == KVLayout(
        LAYER, 3 * LAYER, 128, 64
    )
    # "Dense first": the layer that keeps every token opens each group.
    assert layout_of("cohere2moe", 8, sliding_window=4096) == KVLayout(
        2 * LAYER, 6 * LAYER, 4096, 64
    )
    # An architecture whose pattern is not known is counted whole: an overcount, never under.
    assert layout_of("mystery", 4, sliding_window=128) == KVLayout(4 * LAYER, 0, 0, 64)


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


def test_each_cache_type_takes_its_real_bytes_per_block_of_32_values() -> None:
    # 32 values in f16: 64 bytes; q8_0 keeps them in 32 bytes and a 2-byte scale, q4_0 in 16
    # bytes and the scale (ggml's block_q8_0 and block_q4_0).
    assert cache_type("f16").bytes_of(64) == 64
    assert cache_type("q8_0").bytes_of(64) == 34
    assert cache_type("q4_0").bytes_of(64) == 18
    assert set(CACHE_TYPES) == {"f16", "q8_0", "q4_0"}
    with pytest.raises(ValueError, match="q8_0"):
        cache_type("q5_1")


def test_a_quantized_cache_counts_every_layer_and_window_at_its_size() -> None:
    f16 = layout_of("gemma3", 18, sliding_window=512)
    q8 = f16.in_type(cache_type("q8_0"))
    q4 = f16.in_type(cache_type("q4_0"))
    assert (q8.whole_bytes, q8.window_bytes) == (3 * LAYER * 17 // 32, 15 * LAYER * 17 // 32)
    assert (q4.whole_bytes, q4.window_bytes) == (3 * LAYER * 9 // 32, 15 * LAYER * 9 // 32)
    assert q8.type_name == "q8_0" and q8.window == 512
    cells, sequences = 8192, 4
    assert kv_cache_bytes(q8, cells, sequences) == kv_cache_bytes(f16, cells, sequences) * 17 // 32
    assert kv_cache_bytes(q4, cells, sequences) == kv_cache_bytes(f16, cells, sequences) * 9 // 32


def test_heads_that_do_not_divide_into_blocks_keep_an_f16_cache() -> None:
    info = {
        "llama.block_count": 2,
        "llama.attention.head_count": 4,
        "llama.attention.head_count_kv": 4,
    }
    narrow = kv_layout_of("llama", info, 64)  # heads of 16 values: half a block
    assert narrow.head_width == 16
    assert cache_type_for(narrow, "q8_0") is F16
    assert cache_type_for(narrow, "f16") is F16
    wide = layout_of("llama", 2)
    assert cache_type_for(wide, "q4_0") is cache_type("q4_0")


def test_a_budget_holds_about_twice_the_context_in_q8_0_and_four_times_in_q4_0() -> None:
    f16 = layout_of("llama", 2)
    weights, contexts = 1000, 4
    budget = weights + f16.bytes_per_token * contexts * 8192
    f16_ctx = default_context(f16, 131072, weights, budget, contexts, 4)
    q8_ctx = default_context(f16.in_type(cache_type("q8_0")), 131072, weights, budget, contexts, 4)
    q4_ctx = default_context(f16.in_type(cache_type("q4_0")), 131072, weights, budget, contexts, 4)
    assert f16_ctx == 8192
    assert q8_ctx == 15360  # 8192 * 32 / 17, in steps of 256
    assert q4_ctx == 28928  # 8192 * 32 / 9, in steps of 256
