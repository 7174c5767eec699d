from __future__ import annotations

from pathlib import Path

import llama_cpp
import pytest
from gguf import GGUFReader

from models_app.gguf_header import read_header
from models_app.gguf_metadata import GGUFError, read_gguf_metadata
from tests.tiny_gguf import CHAT_TEMPLATE


def test_it_reads_architecture_size_and_template(tiny_gguf: Path) -> None:
    meta = read_gguf_metadata(tiny_gguf)
    assert meta.architecture == "llama"
    assert meta.context_length == 4096
    assert meta.embedding_length == 64
    assert meta.quantization == "F32"
    assert meta.chat_template == CHAT_TEMPLATE
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
    layout = read_gguf_metadata(path).kv_layout
    assert layout.window == 0 and layout.window_bytes == 0  # no sliding-window layers
    per_token = layout.bytes_per_token
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


@pytest.mark.parametrize("model", ["tiny_gguf", "slow_gguf"])
def test_the_header_reads_as_the_gguf_package_reads_it(
    model: str, request: pytest.FixtureRequest
) -> None:
    """``models_app.gguf_header`` against ``gguf.GGUFReader``: every key, value and tensor,
    the vocabulary too when it is not skipped."""
    path: Path = request.getfixturevalue(model)
    reader = GGUFReader(path)
    header = read_header(path)
    fields = {name: f for name, f in reader.fields.items() if not name.startswith("GGUF.")}
    assert header.fields == {name: f.contents() for name, f in fields.items()}
    assert [(t.name, t.shape, t.type) for t in header.tensors] == [
        (t.name, tuple(int(d) for d in t.shape), int(t.tensor_type)) for t in reader.tensors
    ]
    skipped = read_header(path, skip={"tokenizer.ggml.tokens", "tokenizer.ggml.scores"})
    assert skipped.fields["tokenizer.ggml.tokens"] is None
    assert skipped.fields["tokenizer.ggml.scores"] is None
    assert skipped.tensors == header.tensors


def test_a_truncated_header_is_not_a_gguf(tiny_gguf: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_gguf.read_bytes()[:200])
    with pytest.raises(GGUFError):
        read_gguf_metadata(cut)
    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(GGUFError):
        read_gguf_metadata(empty)
