"""The smaller holes, each as the misuse it stops: a batch on a file whose content is gone
(a 400 and no batch left behind), an ordinary key reading the server's file paths from the
model listing (none shown; the listing is /api/tags's), an ordinary key pinning a model for
ever (``keep_alive`` capped at ``HERD_MAX_KEEP_ALIVE``), and the embedded database and the
secret key readable by other users of the machine (both mode 600)."""

from __future__ import annotations

import stat
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from tests.isolation import chat_line, create_batch, new_member, upload_batch_input
from tests.keyed import KeyedServer, KeyedWeb

# HERD_MAX_KEEP_ALIVE's default.
MAX_KEEP_ALIVE = 3600


def test_a_batch_on_a_file_whose_content_is_gone_is_a_400_and_leaves_no_batch(
    keyed_web: KeyedWeb,
) -> None:
    member = new_member(keyed_web)
    file_id = upload_batch_input(keyed_web, member.secret, [chat_line("one", "tiny")])
    (keyed_web.home / "files" / file_id).unlink()
    reply = create_batch(keyed_web, member.secret, file_id)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"]["param"] == "input_file_id"
    batches = keyed_web.call("GET", "/v1/batches", member.secret).json()["data"]
    assert [b for b in batches if b["input_file_id"] == file_id] == []


def test_an_ordinary_key_sees_no_server_paths_and_the_models_of_api_tags(
    keyed_web: KeyedWeb,
) -> None:
    for flags in ((), ("--models", "tiny")):
        secret = new_member(keyed_web, *flags).secret
        records = keyed_web.call("GET", "/api/models/", secret).json()
        assert records and all("path" not in record for record in records)
        tags = keyed_web.call("GET", "/api/tags", secret).json()["models"]
        assert {r["name"] for r in records} == {t["name"] for t in tags}
        one = keyed_web.call("GET", f"/api/models/{records[0]['id']}/", secret).json()
        assert "path" not in one
    staff = keyed_web.call("GET", "/api/models/", keyed_web.staff_secret).json()
    assert all(record["path"] for record in staff)


def test_an_ordinary_key_cannot_keep_a_model_loaded_for_ever(
    keyed_server: KeyedServer, tiny_gguf: Path
) -> None:
    name = f"ka-capped-{uuid.uuid4().hex[:6]}"
    keyed_server.herd("import", name, str(tiny_gguf))
    secret = new_member(keyed_server).secret
    asked_at = datetime.now(UTC)
    body = {"model": name, "messages": [], "keep_alive": -1, "stream": False}
    assert keyed_server.call("POST", "/api/chat", secret, json=body).status_code == 200

    def expiry() -> float | None:
        models = keyed_server.call("GET", "/api/ps", secret).json()["models"]
        held = [m for m in models if m["name"] == f"{name}:latest"]
        if not held or not held[0].get("expires_at"):
            return None
        expires = datetime.fromisoformat(held[0]["expires_at"])
        return (expires - asked_at).total_seconds()

    deadline = time.monotonic() + 60
    while (ahead := expiry()) is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert ahead is not None and 0 < ahead <= MAX_KEEP_ALIVE + 60, ahead
    unload = {"model": name, "messages": [], "keep_alive": 0, "stream": False}
    keyed_server.call("POST", "/api/chat", keyed_server.staff_secret, json=unload)


def test_the_database_and_the_secret_key_are_their_owners_alone(
    keyed_server: KeyedServer,
) -> None:
    private = [keyed_server.home / "secret_key"]
    if not keyed_server.env.get("DATABASE_URL"):
        private.append(keyed_server.home / "herd.sqlite3")
    for path in private:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, (path.name, oct(mode))
