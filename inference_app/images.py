"""Images in chat requests, as each API family sends them: checked here, in the web process,
before a worker sees them.

Every family's images end up the same way: an ``ImageList`` reads each one (``add_base64``,
``add_url``), checks it, and gives back the content part that marks its place in a message
(``{"type": "image"}``); the payload carries the images themselves, base64-encoded, in the same
order (``workers.broker.wire.GenerationPayload.images``). The worker's projector decodes them.

Checked: the bytes are a PNG, JPEG or GIF (its signature, and the width and height its header
gives, between 1 and ``MAX_SIDE`` pixels), at most ``HERD_MAX_IMAGE_BYTES`` each and at most
``HERD_MAX_IMAGES`` per request. WebP is refused: llama.cpp's decoder (stb_image) has no WebP,
and the multimodal library decodes it only when built with FFmpeg. An ``http(s)`` URL is
fetched only when ``HERD_FETCH_IMAGES`` is on (off by default: see the setting), within
``HERD_IMAGE_FETCH_TIMEOUT``, without following redirects, and read no further than the size
limit. A refused image is an ``ImageRefused``, a 400 in the family's shape.
"""

from __future__ import annotations

import base64
import binascii
import struct
from urllib.parse import unquote_to_bytes

import httpx
from django.conf import settings

from project.errors import ApiError

# The widest or tallest image read; llama.cpp resizes every image to its projector's size.
MAX_SIDE = 16384

_PNG = b"\x89PNG\r\n\x1a\n"
# JPEG start-of-frame markers (the ones that give the size); C4, C8 and CC are not frames.
_JPEG_FRAMES = {0xC0 + i for i in range(16)} - {0xC4, 0xC8, 0xCC}


class ImageRefused(ApiError):
    code = "invalid_image"


class ImagesNotSupported(ApiError):
    """The model has no vision projector."""

    code = "unsupported_content"


def check_vision(model: str, capabilities: list[str], param: str) -> None:
    """Raises ImagesNotSupported unless the model's ``capabilities`` include ``vision``."""
    if "vision" not in capabilities:
        raise ImagesNotSupported(
            f"model '{model}' does not support images: it has no vision projector",
            param=param,
        )


def image_format(data: bytes, param: str) -> tuple[str, int, int]:
    """The image's format (``png``, ``jpeg``, ``gif``), width and height, from its header.
    Raises ImageRefused for anything else."""
    if data.startswith(_PNG) and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return _sized("png", width, height, param)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return _sized("gif", width, height, param)
    if data.startswith(b"\xff\xd8\xff"):
        return _sized("jpeg", *_jpeg_size(data, param), param)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        raise ImageRefused("WebP images are not supported here: send PNG, JPEG or GIF", param=param)
    raise ImageRefused("not an image: expected PNG, JPEG or GIF data", param=param)


def _sized(kind: str, width: int, height: int, param: str) -> tuple[str, int, int]:
    if not (0 < width <= MAX_SIDE and 0 < height <= MAX_SIDE):
        raise ImageRefused(
            f"a {width}x{height} image: each side must be 1 to {MAX_SIDE} pixels", param=param
        )
    return kind, width, height


def _jpeg_size(data: bytes, param: str) -> tuple[int, int]:
    """Width and height from a JPEG's first frame header, walking its segments."""
    at = 2
    while at + 4 <= len(data):
        if data[at] != 0xFF:
            break
        marker = data[at + 1]
        if marker == 0xFF:  # padding
            at += 1
            continue
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        if marker in _JPEG_FRAMES and at + 9 <= len(data):
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        at += 2 + length
    raise ImageRefused("a JPEG without a readable frame header", param=param)


class ImageList:
    """The images of one request, in order (see the module docstring)."""

    def __init__(self) -> None:
        self.encoded: list[str] = []

    def add_bytes(self, data: bytes, param: str) -> dict[str, str]:
        limit = int(settings.HERD_MAX_IMAGES)
        if len(self.encoded) >= limit:
            raise ImageRefused(f"at most {limit} images in one request", param=param)
        if len(data) > int(settings.HERD_MAX_IMAGE_BYTES):
            raise ImageRefused(
                f"an image of {len(data)} bytes: at most {settings.HERD_MAX_IMAGE_BYTES}",
                param=param,
            )
        image_format(data, param)
        self.encoded.append(base64.b64encode(data).decode("ascii"))
        return {"type": "image"}

    def add_base64(self, text: str, param: str) -> dict[str, str]:
        """An image sent as base64 text (Ollama's ``images``, Anthropic's base64 source)."""
        return self.add_bytes(_from_base64(text, param), param)

    def add_url(self, url: str, param: str) -> dict[str, str]:
        """An image named by URL (OpenAI's ``image_url``, Responses' ``input_image``): a
        ``data:`` URL, or http(s) when ``HERD_FETCH_IMAGES`` allows."""
        if url.startswith("data:"):
            return self.add_bytes(_from_data_url(url, param), param)
        if url.startswith(("http://", "https://")):
            if not settings.HERD_FETCH_IMAGES:
                raise ImageRefused(
                    "this server does not fetch image URLs (HERD_FETCH_IMAGES is off): send "
                    "the image as a data: URL",
                    param=param,
                )
            return self.add_bytes(_fetch(url, param), param)
        raise ImageRefused("an image URL must be a data: or http(s) URL", param=param)


def _from_base64(text: str, param: str) -> bytes:
    # Rough bound before decoding: base64 is four characters for three bytes.
    if len(text) > int(settings.HERD_MAX_IMAGE_BYTES) * 4 // 3 + 4:
        raise ImageRefused(f"an image over {settings.HERD_MAX_IMAGE_BYTES} bytes", param=param)
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise ImageRefused("an image must be base64-encoded", param=param) from None


def _from_data_url(url: str, param: str) -> bytes:
    header, comma, body = url.partition(",")
    if not comma:
        raise ImageRefused("a data: URL needs a comma before its data", param=param)
    if header.endswith(";base64"):
        return _from_base64(body, param)
    return unquote_to_bytes(body)


def _fetch(url: str, param: str) -> bytes:
    limit = int(settings.HERD_MAX_IMAGE_BYTES)
    try:
        with (
            httpx.Client(
                timeout=float(settings.HERD_IMAGE_FETCH_TIMEOUT), follow_redirects=False
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise ImageRefused(
                    f"fetching the image answered HTTP {response.status_code}", param=param
                )
            data = bytearray()
            for block in response.iter_bytes():
                data += block
                if len(data) > limit:
                    raise ImageRefused(f"an image over {limit} bytes", param=param)
            return bytes(data)
    except httpx.HTTPError as exc:
        raise ImageRefused(f"the image could not be fetched: {exc}", param=param) from None
