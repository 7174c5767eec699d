"""llama.cpp's own quantizer, ``llama_model_quantize``, on one GGUF file. No Django here.

``quantize_gguf`` blocks until llama.cpp has written the whole output (it writes the header's
room first, then each tensor in order, so the file grows as it goes: progress can be read from
its size). Types are named as Ollama names them (``Q4_K_M``, ``Q8_0``, ``F16``...), which are
llama.cpp's ``LLAMA_FTYPE_*`` names.
"""

from __future__ import annotations

import ctypes
from pathlib import Path

import llama_cpp


class QuantizeError(RuntimeError):
    """llama.cpp could not quantize the file (it logs why)."""


def file_type(name: str) -> int:
    """The ``llama_ftype`` of a type name. Raises QuantizeError for one llama.cpp lacks."""
    upper = name.upper()
    value = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{upper}", None)
    if value is None:
        value = getattr(llama_cpp, f"LLAMA_FTYPE_ALL_{upper}", None)
    if value is None:
        raise QuantizeError(f"llama.cpp has no quantization type {name!r}")
    return int(value)


def quantize_gguf(
    source: Path, target: Path, type_name: str, *, threads: int = 0, requantize: bool = False
) -> None:
    """Write ``source`` quantized to ``type_name`` into ``target``. ``requantize`` lets the
    source be quantized already (Q8_0 to Q4_K_M). Raises QuantizeError."""
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = file_type(type_name)
    params.nthread = threads
    params.allow_requantize = requantize
    status = llama_cpp.llama_model_quantize(
        str(source).encode(), str(target).encode(), ctypes.byref(params)
    )
    if status != 0:
        raise QuantizeError(f"llama.cpp failed to quantize {source} to {type_name} ({status})")
