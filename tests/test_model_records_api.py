"""``/api/models/`` and ``/api/pulls/``: the REST resources behind the web pages."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client

from models_app.models import ModelRecord, PullJob, PullStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def web() -> Client:
    return Client()


@pytest.fixture
def record(tiny_gguf: Path) -> ModelRecord:
    call_command("import_model", "tiny:api", str(tiny_gguf), stdout=StringIO())
    return ModelRecord.objects.get(name="tiny:api")


def test_it_lists_and_finds_records_by_name(web: Client, record: ModelRecord) -> None:
    listed = web.get("/api/models/").json()
    assert [r["name"] for r in listed] == ["tiny:api"]
    (found,) = web.get("/api/models/", {"name": "tiny:api"}).json()
    assert found["id"] == record.pk
    assert found["details"]["family"] == "llama"
    assert web.get("/api/models/", {"name": "other:1"}).json() == []


def test_it_updates_template_system_prompt_and_defaults_only(
    web: Client, record: ModelRecord
) -> None:
    response = web.patch(
        f"/api/models/{record.pk}/",
        {
            "chat_template": "{{ messages[0]['content'] }}",
            "system_prompt": "Be brief.",
            "default_options": {"temperature": 0.1},
            "name": "renamed:1",
            "path": "/etc/passwd",
        },
        content_type="application/json",
    )
    assert response.status_code == 200, response.content
    record.refresh_from_db()
    assert record.chat_template == "{{ messages[0]['content'] }}"
    assert record.system_prompt == "Be brief."
    assert record.default_options == {"temperature": 0.1}
    assert record.name == "tiny:api"
    assert record.path != "/etc/passwd"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"chat_template": "{% for %}"}, "chat_template: not a Jinja template"),
        ({"default_options": [1, 2]}, "default_options: must be an object"),
    ],
)
def test_it_refuses_bad_edits_in_ollamas_error_shape(
    web: Client, record: ModelRecord, change: dict[str, object], message: str
) -> None:
    before = ModelRecord.objects.get(pk=record.pk)
    response = web.patch(f"/api/models/{record.pk}/", change, content_type="application/json")
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert response.json()["error"].startswith(message)
    after = ModelRecord.objects.get(pk=record.pk)
    assert (after.chat_template, after.default_options) == (
        before.chat_template,
        before.default_options,
    )


def test_it_deletes_a_record_and_its_file_in_the_models_folder(
    web: Client, tiny_gguf: Path
) -> None:
    kept = Path(settings.MODELS_DIR) / "test-delete" / "tiny.gguf"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(tiny_gguf, kept)
    call_command("import_model", "inside", str(kept), stdout=StringIO())
    call_command("import_model", "outside", str(tiny_gguf), stdout=StringIO())
    for name in ("inside:latest", "outside:latest"):
        pk = ModelRecord.objects.get(name=name).pk
        assert web.delete(f"/api/models/{pk}/").status_code == 204
    assert not ModelRecord.objects.exists()
    assert not kept.exists()
    assert tiny_gguf.exists()  # a file imported from elsewhere is the user's own


def test_a_missing_record_is_a_404_in_ollamas_shape(web: Client) -> None:
    response = web.get("/api/models/999/")
    assert response.status_code == 404
    assert set(response.json()) == {"error"}


def test_pull_jobs_show_their_progress_per_file(web: Client) -> None:
    job = PullJob.objects.create(
        name="hf.co/o/r:Q4_K_M",
        repo_id="o/r",
        revision="c" * 40,
        files=[
            {"name": "a-00001-of-00002.gguf", "size": 100, "sha256": "a" * 64},
            {"name": "a-00002-of-00002.gguf", "size": 50, "sha256": "b" * 64},
        ],
        total=150,
        completed=120,
        status=PullStatus.DOWNLOADING,
    )
    shown = web.get(f"/api/pulls/{job.pk}/").json()
    assert shown["status"] == "downloading"
    assert [f["completed"] for f in shown["files"]] == [100, 20]
    assert [j["id"] for j in web.get("/api/pulls/", {"name": job.name}).json()] == [job.pk]


def test_only_one_pull_per_name_can_be_active() -> None:
    fields = {"repo_id": "o/r", "revision": "c" * 40, "name": "hf.co/o/r:latest"}
    PullJob.objects.create(**fields, status=PullStatus.FAILED)
    PullJob.objects.create(**fields)
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        PullJob.objects.create(**fields)
