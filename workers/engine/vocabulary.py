"""A model's tokens as the worker's Python code sees them, read from llama.cpp once each.

Every call into llama.cpp through ctypes gives up the GIL and waits to get it back. With a
batched engine's stepper, its slot threads and their publishers all running Python at once,
each such wait can last a switch interval, and the stepper's waits hold up every sequence.
A token's bytes and whether it ends a generation never change, so each is asked for once per
model and kept: after the first few answers, reading a token is a dict lookup.
"""

from __future__ import annotations

import ctypes
import threading
import weakref

import llama_cpp


class Vocabulary:
    """Token id -> piece bytes and end-of-generation flag, cached; safe from any thread."""

    def __init__(self, llama: llama_cpp.Llama) -> None:
        self._vocab = llama._model.vocab
        self._pieces: dict[int, bytes] = {}
        self._end_of_generation: dict[int, bool] = {}
        self._lock = threading.Lock()  # guards the one buffer misses decode into
        self._buffer = ctypes.create_string_buffer(64)

    def piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            with self._lock:
                piece = self._read_piece(token)
            self._pieces[token] = piece
        return piece

    def is_eog(self, token: int) -> bool:
        flag = self._end_of_generation.get(token)
        if flag is None:
            flag = self._end_of_generation[token] = bool(
                llama_cpp.llama_vocab_is_eog(self._vocab, token)
            )
        return flag

    def _read_piece(self, token: int) -> bytes:
        # The bindings' own helper returns its whole zero-padded buffer; this returns the piece.
        n = llama_cpp.llama_token_to_piece(
            self._vocab, token, self._buffer, len(self._buffer), 0, False
        )
        if n < 0:  # the piece is longer than the buffer: grow it and ask again
            self._buffer = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._buffer, -n, 0, False)
        return self._buffer.raw[:n]


_vocabularies: weakref.WeakKeyDictionary[llama_cpp.Llama, Vocabulary] = weakref.WeakKeyDictionary()
_vocabularies_lock = threading.Lock()


def vocabulary(llama: llama_cpp.Llama) -> Vocabulary:
    """The one ``Vocabulary`` of ``llama``, made on first use and gone with the model."""
    with _vocabularies_lock:
        found = _vocabularies.get(llama)
        if found is None:
            found = _vocabularies[llama] = Vocabulary(llama)
        return found
