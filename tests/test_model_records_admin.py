"""The admin: pull from a reference, edit a record, delete it with its file."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from accounts.models import AuditEntry
from models_app.models import ModelRecord, PullJob
from tests.hub_server import FakeHub, point_huggingface_hub_at

pytestmark = pytest.mark.django_db


@pytest.fixture
def hub_endpoint(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    point_huggingface_hub_at(hub.url, monkeypatch)
    return hub


def test_the_pull_form_starts_a_pull_once_committed(
    admin_client: Client,
    hub_endpoint: FakeHub,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    page = admin_client.get("/admin/models_app/modelrecord/")
    assert b"Pull a model" in page.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = admin_client.post(
            "/admin/models_app/modelrecord/pull/", {"reference": "hf.co/tester/tiny-GGUF:Q8_0"}
        )
    assert response.status_code == 302
    job = PullJob.objects.get()
    assert (job.name, job.status, job.repo_id) == (
        "hf.co/tester/tiny-GGUF:Q8_0",
        "queued",
        "tester/tiny-GGUF",
    )
    # The model's quant, then the repo's vision projector.
    assert [f["name"] for f in job.files] == ["tiny-Q8_0.gguf", "mmproj-tiny-F16.gguf"]
    assert len(callbacks) == 1  # the send to the pulls queue, after commit
    listing = admin_client.get("/admin/models_app/pulljob/")
    assert b"hf.co/tester/tiny-GGUF:Q8_0" in listing.content


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("hf.co/tester/missing-GGUF", "not found"),
        ("hf.co/tester/noquant-GGUF", "name a quant"),
        ("hf.co/a/../b", "invalid model reference"),
    ],
)
def test_the_pull_form_shows_what_is_wrong_and_writes_nothing(
    admin_client: Client, hub_endpoint: FakeHub, reference: str, message: str
) -> None:
    response = admin_client.post("/admin/models_app/modelrecord/pull/", {"reference": reference})
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not PullJob.objects.exists()


def test_the_admin_edits_behaviour_and_deletes_with_the_file(
    admin_client: Client, tiny_gguf: Path
) -> None:
    path = Path(settings.MODELS_DIR) / "test-admin" / "tiny.gguf"
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_gguf, path)
    call_command("import_model", "admin-tiny", str(path), stdout=StringIO())
    record = ModelRecord.objects.get()
    url = f"/admin/models_app/modelrecord/{record.pk}/change/"
    response = admin_client.post(
        url,
        {
            "chat_template": "{{ x }}",
            "system_prompt": "Be kind.",
            "default_options": '{"top_k": 5}',
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    record.refresh_from_db()
    assert (record.chat_template, record.system_prompt, record.default_options) == (
        "{{ x }}",
        "Be kind.",
        {"top_k": 5},
    )
    deleted = admin_client.post(
        f"/admin/models_app/modelrecord/{record.pk}/delete/", {"post": "yes"}
    )
    assert deleted.status_code == 302
    assert not ModelRecord.objects.exists()
    assert not path.exists()


def test_create_a_variant_makes_one_that_names_its_parent(
    admin_client: Client, tiny_gguf: Path
) -> None:
    call_command("import_model", "tiny:admin", str(tiny_gguf), stdout=StringIO())
    parent = ModelRecord.objects.get(name="tiny:admin")
    assert b"Create a variant" in admin_client.get("/admin/models_app/modelrecord/").content
    change = admin_client.get(f"/admin/models_app/modelrecord/{parent.pk}/change/")
    assert b"/admin/models_app/modelrecord/variant/?source=tiny%3Aadmin" in change.content
    form = admin_client.get("/admin/models_app/modelrecord/variant/?source=tiny:admin")
    assert b'<option value="tiny:admin" selected>' in form.content

    refused = admin_client.post(
        "/admin/models_app/modelrecord/variant/",
        {"source": "tiny:admin", "name": "kind", "chat_template": "{% for %}"},
    )
    assert refused.status_code == 200 and b"not a Jinja chat template" in refused.content
    response = admin_client.post(
        "/admin/models_app/modelrecord/variant/",
        {
            "source": "tiny:admin",
            "name": "kind",
            "system_prompt": "Be kind.",
            "parameters": "temperature 0.4\nstop </s>\nstop <|end|>",
        },
    )
    variant = ModelRecord.objects.get(name="kind:latest")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/models_app/modelrecord/{variant.pk}/change/"
    assert variant.parent_model == "tiny:admin" and variant.path == parent.path
    assert variant.system_prompt == "Be kind."
    assert variant.default_options == {"temperature": 0.4, "stop": ["</s>", "<|end|>"]}
    listed = admin_client.get("/admin/models_app/modelrecord/").content.decode()
    assert "tiny:admin" in listed.split("kind:latest", 1)[1]  # the parent column
    entry = AuditEntry.objects.get(action="model_created")
    assert (entry.actor_name, entry.target) == ("admin", "kind:latest")
