"""Read what a model record needs from a GGUF file's header (``models_app.gguf_header``)."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gguf import GGML_QUANT_SIZES, GGMLQuantizationType, LlamaFileType

from models_app.gguf_header import GGUFHeader, HeaderError, read_header
from workers.kv_cache import KVLayout, kv_layout_of

__all__ = ["GGUFError", "GGUFMetadata", "KVLayout", "read_gguf_metadata"]

# Keys too large to copy onto a record or into /api/show (vocabularies, merges).
_BULKY_KEYS = (
    "tokenizer.ggml.tokens",
    "tokenizer.ggml.scores",
    "tokenizer.ggml.token_type",
    "tokenizer.ggml.merges",
    "tokenizer.ggml.added_tokens",
)


class GGUFError(ValueError):
    """The file is not a GGUF this server can read."""


@dataclass(frozen=True)
class GGUFMetadata:
    architecture: str
    name: str
    parameter_count: int
    quantization: str
    context_length: int
    embedding_length: int
    chat_template: str
    pooling: bool
    info: dict[str, Any] = field(default_factory=dict)
    present_keys: frozenset[str] = frozenset()

    @property
    def parameter_size(self) -> str:
        """``268098176`` -> ``"268.10M"``, as Ollama shows it."""
        count = self.parameter_count
        for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("K", 1e3)):
            if count >= scale:
                return f"{count / scale:.2f}{unit}"
        return str(count)

    def model_info(self) -> dict[str, Any]:
        """The header's keys as Ollama's ``/api/show`` gives them: JSON values, the
        vocabulary arrays as null, the chat template left to ``template``."""
        info: dict[str, Any] = {k: _jsonable(v) for k, v in self.info.items()}
        info.pop("tokenizer.chat_template", None)
        info.setdefault("general.parameter_count", self.parameter_count)
        for key in _BULKY_KEYS:
            if key in self.present_keys:
                info[key] = None
        return dict(sorted(info.items()))

    @property
    def kv_layout(self) -> KVLayout:
        """What llama.cpp keeps in the KV cache for each token (``workers.kv_cache``)."""
        return kv_layout_of(self.architecture, self.info, self.embedding_length)


def _open(path: Path) -> GGUFHeader:
    try:
        return read_header(path, skip=_BULKY_KEYS)
    except (OSError, HeaderError) as exc:
        raise GGUFError(f"{path}: not a readable GGUF file ({exc})") from exc


def read_gguf_metadata(path: Path, parts: Sequence[Path] = ()) -> GGUFMetadata:
    """Read the header of ``path``; ``parts`` are the other files of a split GGUF, whose
    tensors count towards the parameters. Raises GGUFError when one is missing or not a GGUF."""
    reader = _open(path)
    info = dict(reader.fields)
    arch = str(info.get("general.architecture", ""))
    parameter_count = sum(
        math.prod(t.shape) for r in (reader, *map(_open, parts)) for t in r.tensors
    )
    return GGUFMetadata(
        architecture=arch,
        name=str(info.get("general.name", "")),
        parameter_count=parameter_count,
        quantization=_quantization(info.get("general.file_type"), reader),
        context_length=int(info.get(f"{arch}.context_length", 0) or 0),
        embedding_length=int(info.get(f"{arch}.embedding_length", 0) or 0),
        chat_template=str(info.get("tokenizer.chat_template", "") or ""),
        pooling=f"{arch}.pooling_type" in info,
        info={k: v for k, v in info.items() if k not in _BULKY_KEYS},
        present_keys=frozenset(info),
    )


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def _quantization(file_type: Any, reader: GGUFHeader) -> str:
    if isinstance(file_type, int):
        try:
            return re.sub(r"^(MOSTLY_|ALL_)", "", LlamaFileType(file_type).name)
        except ValueError:
            pass
    # No file type in the header: name it after the most common tensor type.
    kinds = [_tensor_type_name(t.type) for t in reader.tensors]
    return max(set(kinds), key=kinds.count) if kinds else ""


def _tensor_type_name(value: int) -> str:
    try:
        return GGMLQuantizationType(value).name
    except ValueError:
        return f"type {value}"


# The tensor type most of a file quantized to a llama.cpp file type is made of (the K-quant
# mixes keep a few tensors at a higher type; the estimate below ignores that).
_MAIN_TENSOR_TYPE = {
    "Q2_K": "Q2_K",
    "Q3_K_S": "Q3_K",
    "Q3_K_M": "Q3_K",
    "Q3_K_L": "Q3_K",
    "Q4_K_S": "Q4_K",
    "Q4_K_M": "Q4_K",
    "Q5_K_S": "Q5_K",
    "Q5_K_M": "Q5_K",
}


def _tensor_bytes(elements: int, kind: GGMLQuantizationType) -> int:
    block, type_size = GGML_QUANT_SIZES[kind]
    return elements // block * type_size


def estimate_quantized_size(path: Path, file_type: str) -> int:
    """About the size of ``path`` quantized to ``file_type`` (``Q8_0``, ``Q4_K_M``...), for
    progress and the disk check: llama.cpp quantizes the tensors of two dimensions or more
    whose rows fit the type's blocks, and copies the others as they are. Raises GGUFError."""
    header = _open(path)
    target = GGMLQuantizationType[_MAIN_TENSOR_TYPE.get(file_type, file_type)]
    block = GGML_QUANT_SIZES[target][0]
    # Rows too short for a K-quant's blocks fall back to a type of 32-value blocks.
    fallback = GGMLQuantizationType.Q5_0
    source_bytes = total = 0
    for tensor in header.tensors:
        elements = math.prod(tensor.shape)
        own = _tensor_bytes(elements, GGMLQuantizationType(tensor.type))
        source_bytes += own
        row = tensor.shape[0] if tensor.shape else 0
        if len(tensor.shape) < 2:
            total += own
        elif row % block == 0:
            total += _tensor_bytes(elements, target)
        elif block > GGML_QUANT_SIZES[fallback][0] and row % GGML_QUANT_SIZES[fallback][0] == 0:
            total += _tensor_bytes(elements, fallback)
        else:
            total += own
    # The header (and the padding between tensors) comes along as it is.
    return total + max(0, path.stat().st_size - source_bytes)
