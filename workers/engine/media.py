"""Images in a prompt: a model's vision projector (an ``mmproj`` GGUF) through llama.cpp's
multimodal library (``libmtmd``, bound in ``llama_cpp.mtmd_cpp``).

Contract: ``Projector.load(path, llama, threads, use_gpu)`` opens the projector beside a loaded
model (raises ``ProjectorError`` when llama.cpp refuses it, e.g. its output width is not the
model's). ``Projector.media_prompt(segments)`` turns a rendered prompt cut at its images (text
tokens, image bytes, text tokens, ...) into a ``MediaPrompt``: the prompt's token list, each
image standing in it as a run of placeholder ids as long as the embeddings it becomes, and an
``ImageSpan`` per run; it raises ``ImageUnreadable`` for bytes llama.cpp cannot decode.
``Projector.decode(ctx, span, position, seq_id, n_batch)`` encodes one span's image and decodes
its embeddings into sequence ``seq_id`` of a llama context from ``position``, as a prompt
piece is decoded. ``MediaPrompt.close()`` frees what llama.cpp holds for it.

A placeholder id is negative, so it is never a vocabulary token, and it is derived from the
image's bytes: a cached prompt start that holds the same image at the same place is the same
cache (reused as text is), another image never matches. A cached start is never kept up to the
middle of an image (``MediaPrompt.keep``): an image decodes whole.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import llama_cpp
from llama_cpp import mtmd_cpp as mtmd

__all__ = ["ImageSpan", "ImageUnreadable", "MediaPrompt", "Projector", "ProjectorError"]


class ProjectorError(RuntimeError):
    """llama.cpp could not open the projector beside its model."""


class ImageUnreadable(ValueError):
    """An image the projector's decoder cannot read (llama.cpp's stb_image: PNG, JPEG, GIF,
    BMP...)."""


@dataclass(frozen=True)
class ImageSpan:
    """One image in a prompt: where its embeddings start, how many positions they take, and
    the llama.cpp chunk (``mtmd_input_chunk``) that holds its preprocessed pixels."""

    start: int
    length: int
    chunk: int


@dataclass
class MediaPrompt:
    """A prompt with images (see the module docstring). ``tokens`` holds a placeholder id at
    each image position; ``spans`` are in prompt order."""

    projector: Projector
    tokens: list[int]
    spans: list[ImageSpan] = field(default_factory=list)
    # llama.cpp's chunk lists the spans point into, freed by close().
    _chunk_lists: list[int] = field(default_factory=list, repr=False)

    @property
    def image_tokens(self) -> int:
        return sum(span.length for span in self.spans)

    def span_at(self, position: int) -> ImageSpan | None:
        """The image whose embeddings start at ``position``, if one does."""
        return next((span for span in self.spans if span.start == position), None)

    def text_end(self, position: int) -> int:
        """Where the text from ``position`` on ends: the next image's start, or the end."""
        return next((span.start for span in self.spans if span.start >= position), len(self.tokens))

    def keep(self, cached: int) -> int:
        """``cached`` prompt positions found in a cache, cut back to the start of an image it
        would end in the middle of."""
        for span in self.spans:
            if span.start < cached < span.start + span.length:
                return span.start
        return cached

    def ends_with_text(self) -> bool:
        """Generation samples from the prompt's last position, which must be a token."""
        return bool(self.tokens) and self.tokens[-1] >= 0

    def close(self) -> None:
        for chunks in self._chunk_lists:
            mtmd.mtmd_input_chunks_free(chunks)
        self._chunk_lists.clear()
        self.spans = []


class Projector:
    """A model's vision projector, opened once with the model (see the module docstring).
    Calls into it take a lock: a batched engine tokenizes one request's images while its
    stepper decodes another's."""

    def __init__(self, ctx: mtmd.mtmd_context_p, path: str) -> None:
        self._ctx = ctx
        self._closed = False
        self.path = path
        self._lock = threading.Lock()
        # Models that place image embeddings by 2-D positions (Qwen2-VL's M-RoPE) need a
        # position per embedding that is not its index: not done here yet.
        self.positions_are_indices = not mtmd.mtmd_decode_use_mrope(ctx)

    @classmethod
    def load(cls, path: str, llama: llama_cpp.Llama, threads: int, use_gpu: bool) -> Projector:
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.n_threads = threads
        params.print_timings = False
        ctx = mtmd.mtmd_init_from_file(path.encode(), llama._model.model, params)
        if not ctx:
            raise ProjectorError(
                f"llama.cpp could not open the vision projector {path} for this model (its "
                "log says why: a projector made for another model has another output width)"
            )
        if not mtmd.mtmd_support_vision(ctx):
            mtmd.mtmd_free(ctx)
            raise ProjectorError(f"{path} is a projector without vision input")
        return cls(ctx, path)

    def media_prompt(self, segments: Sequence[list[int] | bytes]) -> MediaPrompt:
        """The prompt of ``segments``: lists of text tokens and images' bytes, in order."""
        prompt = MediaPrompt(self, [])
        try:
            for segment in segments:
                if isinstance(segment, bytes):
                    self._add_image(prompt, segment)
                else:
                    prompt.tokens.extend(segment)
        except BaseException:
            prompt.close()
            raise
        return prompt

    def _add_image(self, prompt: MediaPrompt, image: bytes) -> None:
        placeholder = -1 - int.from_bytes(hashlib.sha256(image).digest()[:3], "big")
        buffer = (ctypes.c_uint8 * len(image)).from_buffer_copy(image)
        with self._lock:
            bitmap = mtmd.mtmd_helper_bitmap_init_from_buf(self._ctx, buffer, len(image), False)
            if not bitmap:
                raise ImageUnreadable("the image could not be decoded (PNG, JPEG or GIF)")
            chunks = mtmd.mtmd_input_chunks_init()
            if not chunks:
                mtmd.mtmd_bitmap_free(bitmap)
                raise MemoryError("llama.cpp could not allocate an image's chunks")
            prompt._chunk_lists.append(chunks)
            # The marker alone: the projector adds the tokens its model wants around an image
            # (Gemma 3's <start_of_image>...), which come back as text chunks.
            marker = mtmd.mtmd_default_marker()
            text = mtmd.mtmd_input_text(marker, len(marker), False, True)
            bitmaps = (mtmd.mtmd_bitmap_p_ctypes * 1)(bitmap)
            status = mtmd.mtmd_tokenize(self._ctx, chunks, ctypes.byref(text), bitmaps, 1)
            mtmd.mtmd_bitmap_free(bitmap)
            if status != 0:
                raise ImageUnreadable(f"the image could not be prepared (mtmd_tokenize: {status})")
            for i in range(mtmd.mtmd_input_chunks_size(chunks)):
                chunk = mtmd.mtmd_input_chunks_get(chunks, i)
                if mtmd.mtmd_input_chunk_get_type(chunk) == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                    count = ctypes.c_size_t(0)
                    ids = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                    prompt.tokens.extend(int(ids[j]) for j in range(count.value))
                    continue
                length = int(mtmd.mtmd_input_chunk_get_n_tokens(chunk))
                prompt.spans.append(ImageSpan(len(prompt.tokens), length, chunk))
                prompt.tokens.extend([placeholder] * length)

    def decode(self, ctx: int, span: ImageSpan, position: int, seq_id: int, n_batch: int) -> None:
        """Encode ``span``'s image and decode its embeddings into ``seq_id`` of ``ctx`` from
        ``position`` on. Raises RuntimeError when llama.cpp fails."""
        new_position = llama_cpp.llama_pos(0)
        with self._lock:
            status = mtmd.mtmd_helper_eval_chunk_single(
                self._ctx,
                ctx,
                span.chunk,
                position,
                seq_id,
                n_batch,
                False,
                ctypes.byref(new_position),
            )
        if status != 0:
            raise RuntimeError(f"llama.cpp failed to decode an image (status {status})")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                mtmd.mtmd_free(self._ctx)
                self._closed = True
