"""Blob uploads received at the ASGI level, so a GGUF streams straight into ``HERD_MODELS``.

Django's ASGI handler reads a whole request body into a temporary file before any middleware
or view runs: a 20 GB upload would sit in ``/tmp`` first, and no limit could stop it early.
``HerdASGIHandler`` takes ``POST /api/blobs/sha256:<hex>`` bodies itself: it writes them
through a ``BlobWriter`` (digest checked while writing, size and disk limits as they arrive),
then hands Django the request with an empty body and the outcome in the scope under
``BLOB_RECEIPT``, for the view to answer. Anything else goes to Django unchanged.

A caller whose key may not manage models gets nothing written: the body is read and dropped,
and the key middleware answers 401 or 403 as for any other request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.utils import timezone

from accounts.lookup import afind_key
from models_app.blobs import BlobRefused, BlobWriter, blob_exists, parse_digest

BLOB_RECEIPT = "herd.blob_receipt"
BLOB_PREFIX = "/api/blobs/"
# Chunks are gathered to this size before each write (one thread hop per write).
_WRITE_BLOCK = 1 << 20

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class BlobReceipt:
    """What became of one upload: ``path`` once stored, ``existed`` when the blob was there
    already (the body was dropped), else ``error``."""

    path: Path | None = None
    existed: bool = False
    error: BlobRefused | None = None


def is_blob_upload(scope: MutableMapping[str, Any]) -> bool:
    return (
        scope.get("type") == "http"
        and scope.get("method") == "POST"
        and str(scope.get("path", "")).startswith(BLOB_PREFIX)
    )


def _headers(scope: MutableMapping[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


async def _may_write(headers: dict[str, str]) -> bool:
    """Whether the key middleware will let this upload through (see ApiKeyMiddleware)."""
    if not settings.HERD_AUTH_REQUIRED:
        return True
    authorization = headers.get("authorization", "")
    secret = authorization[7:].strip() if authorization[:7].lower() == "bearer " else ""
    secret = secret or headers.get("x-api-key", "").strip()
    if not secret:
        return False
    key = await afind_key(secret)
    return key is not None and key.may_manage_models(timezone.now())


async def _drain(receive: Receive) -> bool:
    """Read the rest of the body and drop it; False when the client went away."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return False
        if not message.get("more_body", False):
            return True


async def receive_blob(scope: MutableMapping[str, Any], receive: Receive) -> BlobReceipt | None:
    """Read the body of a blob upload into the blob store. None when the client went away
    (nothing is left behind)."""
    headers = _headers(scope)
    try:
        sha256 = parse_digest(str(scope["path"])[len(BLOB_PREFIX) :])
    except BlobRefused as exc:
        return BlobReceipt(error=exc) if await _drain(receive) else None
    if not await _may_write(headers) or blob_exists(sha256):
        if not await _drain(receive):
            return None
        return BlobReceipt(existed=blob_exists(sha256))
    declared = headers.get("content-length")
    try:
        writer = await asyncio.to_thread(
            BlobWriter, sha256, int(declared) if declared and declared.isdigit() else None
        )
    except BlobRefused as exc:
        return BlobReceipt(error=exc)  # the rest of the body is dropped as Django reads on
    try:
        pending: list[bytes] = []
        buffered = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                await asyncio.to_thread(writer.abort)
                return None
            chunk = message.get("body", b"")
            pending.append(chunk)
            buffered += len(chunk)
            more = message.get("more_body", False)
            if buffered >= _WRITE_BLOCK or not more:
                await asyncio.to_thread(writer.write, b"".join(pending))
                pending, buffered = [], 0
            if not more:
                break
        return BlobReceipt(path=await asyncio.to_thread(writer.finish))
    except BlobRefused as exc:
        return BlobReceipt(error=exc)  # the writer has removed its partial file
    except BaseException:
        await asyncio.to_thread(writer.abort)
        raise


def _body_already_read(receive: Receive) -> Receive:
    """A ``receive`` for Django: an empty body first, then the client's disconnect; body
    messages still arriving (an upload refused part way) are dropped."""
    sent_body = False

    async def replay() -> Message:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": b"", "more_body": False}
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return message

    return replay


class HerdASGIHandler(ASGIHandler):
    """Django's ASGI handler, with blob uploads streamed to the blob store first."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if is_blob_upload(scope):
            receipt = await receive_blob(scope, receive)
            if receipt is None:
                return  # the client went away mid-upload
            scope = {**scope, BLOB_RECEIPT: receipt}
            receive = _body_already_read(receive)
        await super().__call__(scope, receive, send)
