"""What the web process checks of an image before a worker sees it (``inference_app.images``):
the format and size its header gives, the request's count and bytes limits, data: URLs, and
http(s) URLs fetched only when ``HERD_FETCH_IMAGES`` allows, within the size limit."""

from __future__ import annotations

import base64
import struct
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from pytest_django.fixtures import Settings

from inference_app.images import ImageList, ImageRefused, image_format
from tests.tiny_mmproj import png_bytes

GIF = b"GIF89a" + struct.pack("<HH", 5, 7) + b"\0" * 16
# A JPEG's start, an APP0 segment, then a baseline frame header (height 9, width 11).
JPEG = (
    b"\xff\xd8"
    + b"\xff\xe0"
    + struct.pack(">H", 16)
    + b"JFIF\0"
    + b"\0" * 9
    + b"\xff\xc0"
    + struct.pack(">HBHH", 17, 8, 9, 11)
    + b"\0" * 12
)
WEBP = b"RIFF" + struct.pack("<I", 30) + b"WEBPVP8 " + b"\0" * 20


def test_png_jpeg_and_gif_give_their_size() -> None:
    assert image_format(png_bytes(24, 12), "p") == ("png", 24, 12)
    assert image_format(JPEG, "p") == ("jpeg", 11, 9)
    assert image_format(GIF, "p") == ("gif", 5, 7)


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"hello", "not an image"),
        (WEBP, "WebP images are not supported"),
        (b"\xff\xd8\xff\xd9", "without a readable frame header"),
        (png_bytes(1, 1)[:16] + struct.pack(">II", 0, 5), "each side must be 1 to"),
        (b"GIF89a" + struct.pack("<HH", 20000, 2), "a 20000x2 image"),
    ],
    ids=["text", "webp", "jpeg-without-frame", "png-zero-wide", "gif-too-wide"],
)
def test_other_bytes_are_refused(data: bytes, says: str) -> None:
    with pytest.raises(ImageRefused, match=says) as caught:
        image_format(data, "messages.0.content.1.image_url")
    assert caught.value.status == 400
    assert caught.value.param == "messages.0.content.1.image_url"


def test_a_request_holds_at_most_the_images_and_bytes_the_settings_allow(
    settings: Settings,
) -> None:
    settings.HERD_MAX_IMAGES = 2
    settings.HERD_MAX_IMAGE_BYTES = 2000
    images = ImageList()
    assert images.add_bytes(png_bytes(8, 8), "a") == {"type": "image"}
    images.add_base64(base64.b64encode(GIF).decode(), "b")
    with pytest.raises(ImageRefused, match="at most 2 images"):
        images.add_bytes(GIF, "c")
    with pytest.raises(ImageRefused, match="at most 2000"):
        ImageList().add_bytes(png_bytes(64, 64, seed=1), "d")
    assert [base64.b64decode(e) for e in images.encoded] == [png_bytes(8, 8), GIF]


def test_data_urls_are_read_and_bad_base64_refused() -> None:
    images = ImageList()
    images.add_url("data:image/png;base64," + base64.b64encode(png_bytes()).decode(), "a")
    assert base64.b64decode(images.encoded[0]) == png_bytes()
    with pytest.raises(ImageRefused, match="base64"):
        images.add_url("data:image/png;base64,%%%", "b")
    with pytest.raises(ImageRefused, match="data: or http"):
        images.add_url("file:///etc/passwd", "c")


class _Images(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = png_bytes(8, 8) if self.path == "/small.png" else png_bytes(200, 200, seed=2)
        status = 200 if self.path in ("/small.png", "/big.png") else 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def image_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_http_urls_are_fetched_only_when_allowed_and_within_the_limit(
    settings: Settings, image_server: str
) -> None:
    settings.HERD_FETCH_IMAGES = False
    with pytest.raises(ImageRefused, match="HERD_FETCH_IMAGES is off"):
        ImageList().add_url(f"{image_server}/small.png", "a")
    settings.HERD_FETCH_IMAGES = True
    settings.HERD_MAX_IMAGE_BYTES = 5000
    images = ImageList()
    images.add_url(f"{image_server}/small.png", "a")
    assert base64.b64decode(images.encoded[0]) == png_bytes(8, 8)
    with pytest.raises(ImageRefused, match="over 5000 bytes"):
        images.add_url(f"{image_server}/big.png", "b")
    with pytest.raises(ImageRefused, match="HTTP 404"):
        images.add_url(f"{image_server}/missing.png", "c")
