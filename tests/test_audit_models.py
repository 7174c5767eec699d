"""Model deletions and placement changes are audited wherever they are made: the Ollama API
(with the acting key's user), the admin."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

from accounts.models import AuditEntry
from models_app.models import ModelRecord, ModelStatus
from tests.keyed import KeyedServer
from workers.models import Placement


def test_deleting_through_the_api_is_audited_with_the_keys_user(
    keyed_server: KeyedServer, tiny_gguf: Path
) -> None:
    keyed_server.herd("import", "audited-delete", str(tiny_gguf))
    reply = keyed_server.call(
        "DELETE", "/api/delete", keyed_server.staff_secret, json={"model": "audited-delete"}
    )
    assert reply.status_code == 200, reply.text
    entries = keyed_server.call(
        "GET", "/herd/audit?action=model_deleted", keyed_server.staff_secret
    ).json()
    assert ("admin", "model_deleted", "audited-delete:latest") in {
        (e["actor"], e["action"], e["target"]) for e in entries
    }


def record(name: str) -> ModelRecord:
    return ModelRecord.objects.create(
        name=name, path=f"/nowhere/{name}.gguf", size=1, status=ModelStatus.READY
    )


@pytest.mark.django_db
def test_pinning_changing_and_unpinning_in_the_admin_are_audited(admin_client: Client) -> None:
    model = record("pinned:latest")
    admin_client.post("/admin/workers/placement/add/", {"model": model.pk, "worker": "cpu@a"})
    placement = Placement.objects.get(model=model)
    admin_client.post(
        f"/admin/workers/placement/{placement.pk}/change/", {"model": model.pk, "worker": "cpu@b"}
    )
    admin_client.post(f"/admin/workers/placement/{placement.pk}/delete/", {"post": "yes"})
    assert not Placement.objects.exists()
    changes = [
        entry.details
        for entry in AuditEntry.objects.filter(action="placement_changed").order_by("pk")
    ]
    assert [c["change"] for c in changes] == ["pinned", "changed", "unpinned"]
    assert changes[1]["was"] == {"model": "pinned:latest", "worker": "cpu@a"}
    assert changes[2]["worker"] == "cpu@b"
    assert {e.actor_name for e in AuditEntry.objects.all()} == {"admin"}


@pytest.mark.django_db
def test_deleting_in_the_admin_is_audited(admin_client: Client) -> None:
    model = record("admin-deleted:latest")
    admin_client.post(f"/admin/models_app/modelrecord/{model.pk}/delete/", {"post": "yes"})
    assert not ModelRecord.objects.filter(pk=model.pk).exists()
    assert AuditEntry.objects.filter(
        action="model_deleted", target="admin-deleted:latest", actor_name="admin"
    ).exists()
