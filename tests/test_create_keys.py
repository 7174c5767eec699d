"""Creating models, quantizing and uploading blobs are model management: with keys required,
only a staff user's key may do them, and each lands in the audit log with who did it."""

from __future__ import annotations

import hashlib

import ollama
import pytest

from tests.keyed import STAFF_USER, KeyedServer
from tests.tiny_gguf import write_tiny_gguf


def audit(server: KeyedServer, action: str) -> list[dict[str, object]]:
    reply = server.call("GET", "/herd/audit", server.staff_secret, params={"action": action})
    assert reply.status_code == 200, reply.text
    entries: list[dict[str, object]] = reply.json()
    return entries


def test_a_key_of_a_user_who_is_not_staff_gets_403(
    keyed_server: KeyedServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    secret = keyed_server.create_key("not-staff-creator")
    headers = {"Authorization": f"Bearer {secret}"}
    client = ollama.Client(host=keyed_server.base_url, headers=headers)
    for attempt in (
        lambda: client.create(model="mine", from_="tiny", system="x"),
        lambda: client.create(model="mine", from_="tiny", quantize="q8_0"),
    ):
        with pytest.raises(ollama.ResponseError) as refused:
            attempt()
        assert refused.value.status_code == 403
        assert "staff" in refused.value.error
    gguf = write_tiny_gguf(tmp_path_factory.mktemp("keys") / "k.gguf", n_ctx=256, seed=5)
    with pytest.raises(ollama.ResponseError) as refused:
        client.create_blob(gguf)
    assert refused.value.status_code == 403
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    assert not (keyed_server.home / "models" / "blobs" / f"sha256-{digest}").exists()
    # Asking whether a blob is there is not management.
    head = keyed_server.call("HEAD", f"/api/blobs/sha256:{digest}", secret)
    assert head.status_code == 404


def test_a_staff_key_creates_and_each_act_is_audited(
    keyed_server: KeyedServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    client = ollama.Client(
        host=keyed_server.base_url,
        headers={"Authorization": f"Bearer {keyed_server.staff_secret}"},
    )
    gguf = write_tiny_gguf(tmp_path_factory.mktemp("keys") / "s.gguf", n_ctx=256, seed=6)
    digest = client.create_blob(gguf)
    assert client.create(model="staff-blob", files={"s.gguf": digest}).status == "success"
    assert client.create(model="staff-variant", from_="tiny", system="Be kind.").status == "success"
    quantized = client.create(model="staff-q8", from_="tiny", quantize="q8_0")
    assert quantized.status == "success"

    (uploaded,) = [e for e in audit(keyed_server, "blob_uploaded") if e["target"] == digest]
    assert uploaded["actor"] == STAFF_USER
    created = {e["target"]: e for e in audit(keyed_server, "model_created")}
    assert created["staff-blob:latest"]["actor"] == STAFF_USER
    assert created["staff-variant:latest"]["details"]["from"] == "tiny:latest"  # type: ignore[index]
    (q8,) = [e for e in audit(keyed_server, "model_quantized") if e["target"] == "staff-q8:latest"]
    assert q8["actor"] == STAFF_USER
    assert q8["details"]["quantize"] == "Q8_0"  # type: ignore[index]
