from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest

from models_app.gguf_metadata import GGUFError, read_gguf_metadata
from tests.tiny_gguf import CHAT_TEMPLATE


def test_it_reads_architecture_size_and_template(tiny_gguf: Path) -> None:
    meta = read_gguf_metadata(tiny_gguf)
    assert meta.architecture == "llama"
    assert meta.context_length == 4096
    assert meta.embedding_length == 64
    assert meta.quantization == "F32"
    assert meta.chat_template == CHAT_TEMPLATE
    assert meta.capabilities == ["completion", "embedding"]
    assert 100_000 < meta.parameter_count < 200_000
    assert meta.parameter_size.endswith("K")


def test_it_leaves_the_vocabulary_out_of_the_info(tiny_gguf: Path) -> None:
    info = read_gguf_metadata(tiny_gguf).info
    assert "tokenizer.ggml.tokens" not in info
    assert info["llama.block_count"] == 2


@pytest.mark.parametrize("model", ["tiny_gguf", "slow_gguf"])
def test_the_kv_cache_per_token_is_what_llama_cpp_keeps(
    model: str, request: pytest.FixtureRequest
) -> None:
    """Measured against llama.cpp: the saved state of one sequence holds its cells' keys and
    values, plus a few bytes per cell for its position and sequence ids."""
    path: Path = request.getfixturevalue(model)
    per_token = read_gguf_metadata(path).kv_bytes_per_token
    info = read_gguf_metadata(path).info
    layers, heads = info["llama.block_count"], info["llama.attention.head_count"]
    head_dim = info["llama.embedding_length"] // heads
    assert per_token == layers * heads * 2 * head_dim * 2  # keys and values, f16
    llama = llama_cpp.Llama(str(path), n_ctx=512, n_threads=1, verbose=False)
    try:
        tokens = llama.tokenize(b"hello world the model is " * 40)[:300]
        llama.eval(tokens)
        saved = llama_cpp.llama_state_seq_get_size(llama._ctx.ctx, 0)
    finally:
        llama.close()
    assert len(tokens) * per_token <= saved <= len(tokens) * (per_token + 32) + 4096


def test_it_rejects_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(GGUFError):
        read_gguf_metadata(bogus)
