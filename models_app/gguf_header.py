"""A GGUF file's header, read without its tensor data and without decoding its vocabulary.

``gguf.GGUFReader`` builds a numpy view for every part of every field as it opens a file: for
a 262k-token vocabulary (Gemma 3) that is a million views, 10 to 15 seconds on a quiet CPU
before the first value can be read, paid on every import, pull and model load. This reads the
same header with ``struct`` over a memory map, in one pass: keys and their values, arrays of
the keys named ``skip`` stepped over without being decoded, and each tensor's shape and type.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MAGIC = b"GGUF"

# GGUF value types (gguf.GGUFValueType): struct format and size of the fixed-size ones.
_SCALARS: dict[int, tuple[str, int]] = {
    0: ("<B", 1),  # UINT8
    1: ("<b", 1),  # INT8
    2: ("<H", 2),  # UINT16
    3: ("<h", 2),  # INT16
    4: ("<I", 4),  # UINT32
    5: ("<i", 4),  # INT32
    6: ("<f", 4),  # FLOAT32
    7: ("<?", 1),  # BOOL
    10: ("<Q", 8),  # UINT64
    11: ("<q", 8),  # INT64
    12: ("<d", 8),  # FLOAT64
}
_STRING = 8
_ARRAY = 9


class HeaderError(ValueError):
    """Not a GGUF header this reader understands."""


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type: int  # a gguf.GGMLQuantizationType value


@dataclass
class GGUFHeader:
    version: int
    fields: dict[str, Any] = field(default_factory=dict)  # None for a skipped array
    tensors: list[TensorInfo] = field(default_factory=list)


def read_header(path: Path, skip: Collection[str] = ()) -> GGUFHeader:
    """The header of the GGUF at ``path``; the arrays of the keys in ``skip`` are passed over
    (their key maps to None). Raises OSError when the file cannot be read, HeaderError when it
    is not a GGUF."""
    with path.open("rb") as file:
        try:
            view = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
        except ValueError as exc:  # an empty file cannot be mapped
            raise HeaderError("empty file") from exc
        with view:
            try:
                return _Reader(view).header(frozenset(skip))
            except (struct.error, IndexError, UnicodeDecodeError, OverflowError) as exc:
                raise HeaderError(f"truncated or malformed header ({exc})") from exc


class _Reader:
    def __init__(self, data: mmap.mmap) -> None:
        self.data = data
        self.at = 0

    def header(self, skip: frozenset[str]) -> GGUFHeader:
        if self.data[:4] != MAGIC:
            raise HeaderError("no GGUF magic")
        self.at = 4
        version = self._unpack("<I", 4)
        if version not in (2, 3):
            raise HeaderError(f"GGUF version {version} is not supported")
        tensor_count = self._unpack("<Q", 8)
        field_count = self._unpack("<Q", 8)
        header = GGUFHeader(version)
        for _ in range(field_count):
            key = self._string()
            kind = self._unpack("<I", 4)
            header.fields[key] = self._value(kind, skipped=key in skip)
        for _ in range(tensor_count):
            name = self._string()
            dims = self._unpack("<I", 4)
            shape = struct.unpack_from(f"<{dims}Q", self.data, self.at)
            self.at += 8 * dims
            tensor_type = self._unpack("<I", 4)
            self.at += 8  # the data offset
            header.tensors.append(TensorInfo(name, tuple(shape), tensor_type))
        return header

    def _unpack(self, fmt: str, size: int) -> Any:
        (value,) = struct.unpack_from(fmt, self.data, self.at)
        self.at += size
        return value

    def _string(self) -> str:
        length = self._unpack("<Q", 8)
        if self.at + length > len(self.data):
            raise HeaderError("a string runs past the end of the file")
        text = bytes(self.data[self.at : self.at + length]).decode("utf-8", "replace")
        self.at += length
        return text

    def _value(self, kind: int, *, skipped: bool = False) -> Any:
        if kind in _SCALARS:
            fmt, size = _SCALARS[kind]
            return self._unpack(fmt, size)
        if kind == _STRING:
            return self._string()
        if kind == _ARRAY:
            return self._array(skipped)
        raise HeaderError(f"unknown value type {kind}")

    def _array(self, skipped: bool) -> list[Any] | None:
        kind = self._unpack("<I", 4)
        count = self._unpack("<Q", 8)
        if kind in _SCALARS:
            fmt, size = _SCALARS[kind]
            if skipped:
                self.at += count * size
                return None
            values = list(struct.unpack_from(f"<{count}{fmt[1]}", self.data, self.at))
            self.at += count * size
            return values
        if kind == _STRING and skipped:
            for _ in range(count):  # each string's length, then past its bytes
                self.at += 8 + struct.unpack_from("<Q", self.data, self.at)[0]
            return None
        values = [self._value(kind) for _ in range(count)]
        return None if skipped else values
