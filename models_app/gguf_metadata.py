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
        """What llama.cpp keeps in the KV cache for each token (keys and values in f16), in
        the layers that attend to every earlier token and in those that attend to a window
        of the last ones. All zero for a model without attention heads."""
        arch = self.architecture
        layers = int(self.info.get(f"{arch}.block_count", 0) or 0)
        heads = _per_layer(self.info.get(f"{arch}.attention.head_count", 0), layers)
        heads_kv = _per_layer(self.info.get(f"{arch}.attention.head_count_kv"), layers) or heads
        most_heads = max(heads, default=0)
        head_dim = self.embedding_length // most_heads if most_heads else 0
        key_length = int(self.info.get(f"{arch}.attention.key_length", head_dim) or 0)
        value_length = int(self.info.get(f"{arch}.attention.value_length", head_dim) or 0)
        per_layer = [n * (key_length + value_length) * 2 for n in heads_kv]
        window = int(self.info.get(f"{arch}.attention.sliding_window", 0) or 0)
        windowed = _windowed_layers(self.info, arch, len(per_layer)) if window else []
        if not any(windowed):
            return KVLayout(sum(per_layer), 0, 0)
        return KVLayout(
            sum(b for b, w in zip(per_layer, windowed, strict=True) if not w),
            sum(b for b, w in zip(per_layer, windowed, strict=True) if w),
            window,
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


def _windowed_layers(info: dict[str, Any], arch: str, layers: int) -> list[bool]:
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


@dataclass(frozen=True)
class KVLayout:
    """A model's KV cache per token: ``whole_bytes`` in the layers that keep every token of a
    sequence, ``window_bytes`` in those that keep only a sequence's last ``window`` tokens."""

    whole_bytes: int
    window_bytes: int
    window: int

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


# llama.cpp's default tokens a step (``n_ubatch``): what Herd's contexts are made with.
UBATCH = 512


def _padded(n: int, to: int) -> int:
    return (n + to - 1) // to * to


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


def _per_layer(value: Any, layers: int) -> list[int]:
    """A header value given once for every layer or as one value per layer, per layer."""
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [int(v) for v in value]
    return [int(value)] * layers


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
