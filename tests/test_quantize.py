"""llama.cpp's quantizer on the tiny test model (``workers.engine.quantize``), and the size
estimate a quantize job reports its progress against."""

from __future__ import annotations

from pathlib import Path

import pytest

from models_app.gguf_metadata import estimate_quantized_size, read_gguf_metadata
from workers.engine.quantize import QuantizeError, file_type, quantize_gguf


@pytest.mark.parametrize("kind", ["Q8_0", "Q4_K_M"])
def test_it_writes_a_smaller_file_of_the_type_asked_for(
    tiny_gguf: Path, tmp_path: Path, kind: str
) -> None:
    target = tmp_path / f"{kind}.gguf"
    quantize_gguf(tiny_gguf, target, kind, threads=1)
    assert read_gguf_metadata(target).quantization == kind
    assert target.stat().st_size < tiny_gguf.stat().st_size / 3
    # The estimate is close enough for a progress bar (K-quants fall back on short rows).
    estimate = estimate_quantized_size(tiny_gguf, kind)
    assert abs(estimate - target.stat().st_size) < 0.15 * target.stat().st_size


def test_it_names_what_llama_cpp_cannot_do(tiny_gguf: Path, tmp_path: Path) -> None:
    with pytest.raises(QuantizeError, match="no quantization type 'Q9_Z'"):
        file_type("Q9_Z")
    q8 = tmp_path / "q8.gguf"
    quantize_gguf(tiny_gguf, q8, "Q8_0", threads=1)
    # Quantized weights are quantized again only when asked to (Q8_0 to Q4_0 here).
    with pytest.raises(QuantizeError):
        quantize_gguf(q8, tmp_path / "again.gguf", "Q4_0", threads=1)
    quantize_gguf(q8, tmp_path / "again.gguf", "Q4_0", threads=1, requantize=True)
    assert read_gguf_metadata(tmp_path / "again.gguf").quantization == "Q4_0"
