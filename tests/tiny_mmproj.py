"""Write a tiny vision projector (an ``mmproj`` GGUF) with random weights, for tests.

No registry ships a projector small enough for a test, so this writes the simplest one
llama.cpp's clip loader (``tools/mtmd/clip.cpp``) accepts: a LLaVA-style ``mlp`` projector over
a two-block ViT, 32x32 pixels in patches of 8, so an image is 16 embeddings of the text model's
width. The tensor names and keys are the ones ``clip-impl.h`` defines (``v.patch_embd.weight``,
``v.blk.N.attn_q.weight``, ``mm.0.weight``, ``clip.vision.image_size``, ...).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from gguf import GGUFWriter

IMAGE_SIZE = 32
PATCH_SIZE = 8
# The mlp projector gives one embedding per patch.
IMAGE_TOKENS = (IMAGE_SIZE // PATCH_SIZE) ** 2


def write_tiny_mmproj(
    path: Path,
    *,
    text_n_embd: int = 64,
    n_embd: int = 32,
    n_head: int = 2,
    n_ff: int = 48,
    n_layer: int = 2,
    seed: int = 4321,
) -> Path:
    """Write the projector to ``path`` and return it. ``text_n_embd`` must be the text model's
    embedding width: llama.cpp refuses a projector whose output does not match its model.
    Two blocks because a llava graph stops one block short of the last (the second-to-last
    layer's features are the ones LLaVA projects)."""
    rng = np.random.default_rng(seed)
    n_patches = IMAGE_TOKENS

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.2).astype(np.float32)

    def bias(n: int) -> np.ndarray:
        return (rng.standard_normal(n) * 0.02).astype(np.float32)

    writer = GGUFWriter(str(path), "clip")
    writer.add_name("tiny-test-mmproj")
    writer.add_string("clip.projector_type", "mlp")
    writer.add_bool("clip.has_vision_encoder", True)
    writer.add_bool("clip.has_audio_encoder", False)
    writer.add_bool("clip.use_gelu", True)
    writer.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    writer.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    writer.add_uint32("clip.vision.embedding_length", n_embd)
    writer.add_uint32("clip.vision.feed_forward_length", n_ff)
    writer.add_uint32("clip.vision.block_count", n_layer)
    writer.add_uint32("clip.vision.projection_dim", text_n_embd)
    writer.add_uint32("clip.vision.attention.head_count", n_head)
    writer.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-6)
    writer.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    writer.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])

    # numpy shapes are ggml's dimensions reversed: a (rows, cols) array is ne = [cols, rows].
    writer.add_tensor("v.patch_embd.weight", weight(n_embd, 3, PATCH_SIZE, PATCH_SIZE))
    writer.add_tensor("v.patch_embd.bias", bias(n_embd))
    writer.add_tensor("v.position_embd.weight", weight(n_patches, n_embd))
    writer.add_tensor("v.pre_ln.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("v.pre_ln.bias", np.zeros(n_embd, dtype=np.float32))
    for i in range(n_layer):
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            writer.add_tensor(f"v.blk.{i}.{name}.weight", weight(n_embd, n_embd))
            writer.add_tensor(f"v.blk.{i}.{name}.bias", bias(n_embd))
        for name in ("ln1", "ln2"):
            writer.add_tensor(f"v.blk.{i}.{name}.weight", np.ones(n_embd, dtype=np.float32))
            writer.add_tensor(f"v.blk.{i}.{name}.bias", np.zeros(n_embd, dtype=np.float32))
        writer.add_tensor(f"v.blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"v.blk.{i}.ffn_up.bias", bias(n_ff))
        writer.add_tensor(f"v.blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
        writer.add_tensor(f"v.blk.{i}.ffn_down.bias", bias(n_embd))
    writer.add_tensor("mm.0.weight", weight(text_n_embd, n_embd))
    writer.add_tensor("mm.0.bias", bias(text_n_embd))
    writer.add_tensor("mm.2.weight", weight(text_n_embd, text_n_embd))
    writer.add_tensor("mm.2.bias", bias(text_n_embd))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def png_bytes(width: int = 24, height: int = 24, *, seed: int = 0) -> bytes:
    """A small RGB PNG of random pixels, written by hand (zlib and the chunk layout), the image
    the tests send."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(height, width * 3), dtype=np.uint8)
    # Each row starts with its filter byte: 0, none.
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
