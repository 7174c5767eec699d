"""``HEAD``/``POST /api/blobs/sha256:<digest>`` through Herd's ASGI handler, which streams the
body into ``HERD_MODELS`` before Django sees the request: the digest is checked while writing,
and a mismatch, a body too large, a disk too full, a client gone or a key that may not manage
models leaves no file behind."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from pytest_django.fixtures import Settings

from accounts.models import AuditEntry
from models_app.blob_receiver import HerdASGIHandler
from models_app.blobs import blob_path

pytestmark = pytest.mark.django_db(transaction=True)

BODY = b"GGUF" + bytes(range(256)) * 40


@pytest.fixture(autouse=True)
def models_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.MODELS_DIR = tmp_path / "models"
    settings.HERD_AUTH_REQUIRED = False
    return settings.MODELS_DIR


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def upload(
    digest: str,
    chunks: list[bytes],
    *,
    headers: dict[str, str] | None = None,
    disconnect_after: int | None = None,
) -> tuple[int | None, bytes]:
    """One POST through HerdASGIHandler, the body sent in ``chunks``; the status and body of
    the answer (None when the client went away first)."""
    declared = {"content-length": str(sum(map(len, chunks)))}
    raw_headers = [(k.encode(), v.encode()) for k, v in {**declared, **(headers or {})}.items()]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/api/blobs/{digest}",
        "raw_path": f"/api/blobs/{digest}".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *raw_headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 11434),
    }
    messages: list[dict[str, Any]] = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    if disconnect_after is not None:
        messages = messages[:disconnect_after]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        if messages:
            return messages.pop(0)
        if disconnect_after is None:
            # The client stays until the answer is sent (Django stops listening then).
            await asyncio.Event().wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(HerdASGIHandler()(scope, receive, send))
    start = [m for m in sent if m["type"] == "http.response.start"]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return (start[0]["status"] if start else None), body


def test_an_upload_streams_into_the_blob_store(models_dir: Path) -> None:
    digest = digest_of(BODY)
    status, _ = upload(digest, [BODY[:1000], BODY[1000:5000], BODY[5000:]])
    assert status == 201
    stored = blob_path(digest.removeprefix("sha256:"))
    assert stored.read_bytes() == BODY
    assert files_under(models_dir) == [stored]
    entry = AuditEntry.objects.get(action="blob_uploaded")
    assert entry.target == digest and entry.details == {"size": len(BODY)}
    # Sending it again is answered at once, and keeps the one copy.
    assert upload(digest, [BODY])[0] == 200
    assert files_under(models_dir) == [stored]


def test_head_says_whether_a_blob_is_there() -> None:
    digest = digest_of(BODY)
    web = Client()
    assert web.head(f"/api/blobs/{digest}").status_code == 404
    assert upload(digest, [BODY])[0] == 201
    assert web.head(f"/api/blobs/{digest}").status_code == 200
    bad = web.head("/api/blobs/sha256:abc")
    assert bad.status_code == 400


def test_a_digest_mismatch_is_400_and_leaves_nothing(models_dir: Path) -> None:
    claimed = digest_of(b"something else")
    status, body = upload(claimed, [BODY[:3000], BODY[3000:]])
    assert status == 400
    assert b"digest mismatch" in body and claimed.encode() in body
    assert digest_of(BODY).encode() in body
    assert files_under(models_dir) == []


def test_a_malformed_digest_is_400(models_dir: Path) -> None:
    status, body = upload("sha256:not-hex", [BODY])
    assert status == 400
    assert b"invalid digest" in body
    assert files_under(models_dir) == []


def test_a_body_over_the_limit_is_413_and_leaves_nothing(
    settings: Settings, models_dir: Path
) -> None:
    settings.HERD_MAX_BLOB = 4000
    # Declared too large up front: refused before a byte is written.
    status, body = upload(digest_of(BODY), [BODY])
    assert status == 413 and b"HERD_MAX_BLOB" in body
    # No length declared, and too large as it arrives: refused part way, the partial removed.
    status, body = upload(
        digest_of(BODY), [BODY[:3000], BODY[3000:]], headers={"content-length": ""}
    )
    assert status == 413
    assert files_under(models_dir) == []


def test_a_disk_short_of_the_reserve_is_507_and_leaves_nothing(
    settings: Settings, models_dir: Path
) -> None:
    settings.HERD_DISK_RESERVE = 1 << 60
    status, body = upload(digest_of(BODY), [BODY])
    assert status == 507 and b"not enough disk space" in body
    assert files_under(models_dir) == []


def test_a_client_that_goes_away_leaves_nothing(models_dir: Path) -> None:
    status, _ = upload(digest_of(BODY), [BODY[:2000], BODY[2000:]], disconnect_after=1)
    assert status is None
    assert files_under(models_dir) == []


def test_nothing_is_written_for_a_caller_without_a_staff_key(
    settings: Settings, models_dir: Path
) -> None:
    settings.HERD_AUTH_REQUIRED = True
    assert upload(digest_of(BODY), [BODY])[0] == 401
    status, _ = upload(digest_of(BODY), [BODY], headers={"authorization": "Bearer nope"})
    assert status == 401
    assert files_under(models_dir) == []


def test_the_django_path_writes_through_the_same_checks(models_dir: Path) -> None:
    """Without Herd's handler (another ASGI server, the test client) the view stores the body
    Django read, with the same digest check."""
    web = Client()
    digest = digest_of(BODY)
    wrong = web.post(f"/api/blobs/{digest_of(b'x')}", BODY, content_type="application/octet-stream")
    assert wrong.status_code == 400 and "digest mismatch" in wrong.json()["error"]
    assert files_under(models_dir) == []
    right = web.post(f"/api/blobs/{digest}", BODY, content_type="application/octet-stream")
    assert right.status_code == 201
    assert blob_path(digest.removeprefix("sha256:")).read_bytes() == BODY
