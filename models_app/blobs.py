"""Blobs: files sent by their digest (Ollama's ``/api/blobs``), before ``/api/create`` makes a
model of them.

A blob lives at ``HERD_MODELS/blobs/sha256-<hex>``, Ollama's own layout. An upload is written
to a partial file of its own beside them, hashed as it arrives, and moved into place only when
its digest is the one it was sent under: a mismatch, a body over ``HERD_MAX_BLOB`` or a disk
that would go below ``HERD_DISK_RESERVE`` removes the partial at once, so nothing is left.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import BinaryIO

from django.conf import settings

from models_app.hub import check_free_disk
from models_app.references import PullRefused
from project.errors import ApiError

_DIGEST = re.compile(r"^sha256[:-]([0-9a-f]{64})$")
# While a body of unknown length arrives, free disk is looked at again after this many bytes.
_DISK_CHECK_EVERY = 64 << 20


class BlobRefused(ApiError):
    """An upload or a reference to a blob that cannot be had; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, status=status)


def parse_digest(raw: str) -> str:
    """``sha256:<64 hex>`` (or Ollama's file form ``sha256-<hex>``) -> the hex. Raises
    BlobRefused (400)."""
    match = _DIGEST.match(raw.strip())
    if match is None:
        raise BlobRefused(f"invalid digest {raw!r}: expected sha256:<64 lowercase hex digits>")
    return match.group(1)


def blobs_dir() -> Path:
    return Path(settings.MODELS_DIR) / "blobs"


def blob_path(sha256: str) -> Path:
    return blobs_dir() / f"sha256-{sha256}"


def blob_exists(sha256: str) -> bool:
    return blob_path(sha256).is_file()


def _check_room(needed: int) -> None:
    try:
        check_free_disk(needed, blobs_dir(), what="the blob")
    except PullRefused as exc:
        raise BlobRefused(exc.message, exc.status) from None


class BlobWriter:
    """One upload of the blob ``sha256``: ``write`` each chunk, then ``finish``.

    ``declared`` is the Content-Length when the client sent one: a body that says up front it
    is too large, or that the disk cannot hold, is refused before a byte is written. Every
    refusal (BlobRefused from ``write`` or ``finish``) has removed the partial file already;
    ``abort`` removes it when the upload stops for any other reason.
    """

    def __init__(self, sha256: str, declared: int | None = None) -> None:
        self.sha256 = sha256
        self.limit = int(settings.HERD_MAX_BLOB)
        if declared is not None:
            self._check_size(declared)
            _check_room(declared)
        self.size = 0
        self._since_disk_check = 0
        self._digest = hashlib.sha256()
        partials = Path(settings.MODELS_DIR) / ".partial"
        partials.mkdir(parents=True, exist_ok=True)
        # A name of its own: two uploads of the same blob never write one file.
        self.partial = partials / f"blob-{sha256[:16]}-{secrets.token_hex(4)}.part"
        self._handle: BinaryIO | None = self.partial.open("wb")

    def _check_size(self, size: int) -> None:
        if size > self.limit:
            raise BlobRefused(f"blobs are limited to {self.limit} bytes (HERD_MAX_BLOB)", 413)

    def write(self, chunk: bytes) -> None:
        if not chunk:
            return
        assert self._handle is not None, "write after finish or abort"
        try:
            self._check_size(self.size + len(chunk))
            self._since_disk_check += len(chunk)
            if self._since_disk_check >= _DISK_CHECK_EVERY:
                self._since_disk_check = 0
                _check_room(len(chunk))
            self._handle.write(chunk)
        except BaseException:
            self.abort()
            raise
        self._digest.update(chunk)
        self.size += len(chunk)

    def finish(self) -> Path:
        """Check the digest and move the blob into place. Raises BlobRefused (400) on a
        mismatch, with the partial removed."""
        assert self._handle is not None, "finish after finish or abort"
        self._handle.close()
        self._handle = None
        actual = self._digest.hexdigest()
        if actual != self.sha256:
            self.partial.unlink(missing_ok=True)
            raise BlobRefused(
                f"digest mismatch, expected 'sha256:{self.sha256}', got 'sha256:{actual}'"
            )
        target = blob_path(self.sha256)
        os.replace(self.partial, target)
        return target

    def abort(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self.partial.unlink(missing_ok=True)
