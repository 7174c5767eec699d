from __future__ import annotations

from pathlib import Path

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


def test_it_rejects_a_file_that_is_not_gguf(tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf at all" * 10)
    with pytest.raises(GGUFError):
        read_gguf_metadata(bogus)
