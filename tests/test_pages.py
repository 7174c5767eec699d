"""The web pages through Django's test client: sign-in, the catalog, pulls, deletion,
batches, the playground page, static files. The workers page and residency, which read the
worker registry, are in test_pages_workers.py; usage charts in test_pages_usage.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.models import AuditEntry
from inference_app.batches.files import FilePurpose, StoredFile
from inference_app.batches.models import BatchJob, BatchStatus, LineStatus
from models_app.models import ModelRecord, ModelStatus, PullJob, PullStatus

pytestmark = pytest.mark.django_db

PAGES = [
    "/ui/models/table",
    "/ui/workers/",
    "/ui/batches/",
    "/ui/playground/",
    "/ui/usage/",
]
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
HTMX = {"HX-Request": "true"}


@pytest.fixture
def web() -> Client:
    """Django's test client (conftest's ``client`` is the OpenAI one)."""
    return Client()


@pytest.fixture
def staff(web: Client) -> Client:
    User.objects.create_user("boss", password="pw", is_staff=True)
    web.login(username="boss", password="pw")
    return web


@pytest.fixture
def viewer(web: Client) -> Client:
    User.objects.create_user("viewer", password="pw")
    web.login(username="viewer", password="pw")
    return web


@pytest.fixture
def record(tmp_path: Path) -> ModelRecord:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(b"GGUF" + b"\0" * 2044)
    return ModelRecord.objects.create(
        name="tiny:latest",
        path=str(path),
        size=3_500_000,
        sha256="ab" * 32,
        architecture="llama",
        family="llama",
        parameter_size="130K",
        quantization="Q4_K_M",
        context_length=4096,
        chat_template="{% for m in messages %}{{ m.content }}{% endfor %}",
        system_prompt="You are terse.",
        default_options={"temperature": 0.2},
        model_info={"general.architecture": "llama"},
    )


def test_root_answers_ollama_clients_in_plain_text(web: Client) -> None:
    for accept in (None, "*/*", "application/json"):
        response = web.get("/", headers={"Accept": accept} if accept else {})
        assert response.status_code == 200
        assert response.content == b"Ollama is running"
        assert response["Content-Type"].startswith("text/plain")
        assert "Accept" in response["Vary"]
    assert web.head("/").status_code == 200


def test_root_sends_a_browser_to_sign_in(web: Client) -> None:
    response = web.get("/", headers=HTML)
    assert response.status_code == 302
    assert response["Location"] == "/ui/login/?next=/"


@pytest.mark.parametrize("url", PAGES)
def test_every_page_requires_sign_in(web: Client, url: str) -> None:
    response = web.get(url, headers=HTML)
    assert response.status_code == 302
    assert response["Location"].startswith("/ui/login/?next=")


def test_signing_in_leads_to_the_catalog_and_signing_out_ends_the_session(web: Client) -> None:
    User.objects.create_user("ann", password="secret-pw")
    assert web.post("/ui/login/", {"username": "ann", "password": "wrong"}).status_code == 200
    response = web.post("/ui/login/", {"username": "ann", "password": "secret-pw", "next": "/"})
    assert response.status_code == 302 and response["Location"] == "/"
    assert web.get("/", headers=HTML).status_code == 200
    assert web.post("/ui/logout/").status_code == 302
    assert web.get("/ui/workers/", headers=HTML).status_code == 302


def test_the_catalog_lists_models_with_their_metadata(viewer: Client, record: ModelRecord) -> None:
    ModelRecord.objects.create(name="coming:latest", path="/x", status=ModelStatus.PENDING)
    page = viewer.get("/", headers=HTML).content.decode()
    row = page[page.index('data-model="tiny:latest"') :]
    row = row[: row.index("</tr>")]
    for shown in ("tiny:latest", "ready", "3.3\xa0MB", "Q4_K_M", "llama", "4096"):
        assert shown in row
    assert 'data-model="coming:latest"' in page and "pending" in page
    assert viewer.head("/", headers=HTML).status_code == 200


def test_a_viewer_sees_no_pull_form_and_may_not_pull_delete_or_cancel(
    viewer: Client, record: ModelRecord
) -> None:
    assert 'id="pull-form"' not in viewer.get("/", headers=HTML).content.decode()
    job = PullJob.objects.create(name="x:latest", repo_id="o/x", revision="r", total=10)
    assert viewer.post("/ui/pulls/", {"reference": "hf.co/o/x"}).status_code == 403
    assert viewer.get(f"/ui/models/{record.pk}/delete").status_code == 403
    assert viewer.post(f"/ui/models/{record.pk}/delete").status_code == 403
    assert viewer.post(f"/ui/pulls/{job.pk}/cancel").status_code == 403
    assert ModelRecord.objects.filter(pk=record.pk).exists()
    assert PullJob.objects.get(pk=job.pk).status == PullStatus.QUEUED


def test_forms_without_a_csrf_token_are_refused(record: ModelRecord) -> None:
    User.objects.create_user("boss", password="pw", is_staff=True)
    strict = Client(enforce_csrf_checks=True)
    strict.login(username="boss", password="pw")
    assert strict.post(f"/ui/models/{record.pk}/delete").status_code == 403
    assert strict.post("/ui/pulls/", {"reference": "hf.co/o/x"}).status_code == 403
    assert ModelRecord.objects.filter(pk=record.pk).exists()
    page = strict.get(f"/ui/models/{record.pk}/delete").content.decode()
    assert 'name="csrfmiddlewaretoken"' in page


def test_a_pull_of_something_not_on_the_hub_is_refused_with_the_reason(staff: Client) -> None:
    response = staff.post("/ui/pulls/", {"reference": "llama3"}, headers=HTMX)
    assert response.status_code == 200
    assert "Cannot pull" in response.content.decode()
    assert "hf.co/" in response.content.decode()
    assert not PullJob.objects.exists()


def test_a_pull_bar_polls_while_it_runs_and_stops_at_100_percent(
    viewer: Client, record: ModelRecord
) -> None:
    job = PullJob.objects.create(
        name="tiny:latest",
        repo_id="o/tiny",
        revision="r",
        status=PullStatus.DOWNLOADING,
        total=400,
        completed=100,
    )
    running = viewer.get(f"/ui/pulls/{job.pk}/", headers=HTMX)
    body = running.content.decode()
    assert 'data-percent="25"' in body and 'hx-trigger="every 500ms"' in body
    assert "HX-Trigger" not in running
    PullJob.objects.filter(pk=job.pk).update(status=PullStatus.READY, completed=400, model=record)
    done = viewer.get(f"/ui/pulls/{job.pk}/", headers=HTMX)
    body = done.content.decode()
    assert 'data-percent="100"' in body and "hx-trigger" not in body
    assert done["HX-Trigger"] == "models-changed"


def test_a_failed_pull_shows_its_error(viewer: Client) -> None:
    job = PullJob.objects.create(
        name="c:latest", repo_id="o/c", revision="r", status=PullStatus.FAILED, error="sha256 bad"
    )
    body = viewer.get(f"/ui/pulls/{job.pk}/", headers=HTMX).content.decode()
    assert "sha256 bad" in body and "hx-trigger" not in body


def test_staff_can_cancel_a_running_pull(staff: Client) -> None:
    job = PullJob.objects.create(
        name="x:latest", repo_id="o/x", revision="r", status=PullStatus.DOWNLOADING, total=10
    )
    body = staff.post(f"/ui/pulls/{job.pk}/cancel", headers=HTMX).content.decode()
    assert PullJob.objects.get(pk=job.pk).status == PullStatus.CANCELLED
    assert 'data-status="cancelled"' in body


def test_the_model_page_shows_metadata_template_defaults_and_recent_usage(
    viewer: Client, record: ModelRecord
) -> None:
    from accounts.models import UsageRecord

    UsageRecord.objects.create(
        model="tiny:latest",
        endpoint="/v1/chat/completions",
        method="POST",
        status=200,
        prompt_tokens=12,
        completion_tokens=30,
        duration_ms=55.0,
    )
    page = viewer.get(f"/ui/models/{record.pk}/", headers=HTML).content.decode()
    for shown in ("Q4_K_M", "130K", "4096", "ab" * 32, "You are terse.", "temperature", "0.2"):
        assert shown in page
    assert "{% for m in messages %}" in page  # the chat template, escaped as text
    assert "1 request, 12 prompt and 30 completion tokens" in page
    assert "/v1/chat/completions" in page
    assert "general.architecture" in page


def test_deleting_a_model_asks_first_then_deletes_it(staff: Client, record: ModelRecord) -> None:
    confirm = staff.get(f"/ui/models/{record.pk}/delete", headers=HTML)
    assert confirm.status_code == 200
    assert "Delete tiny:latest?" in confirm.content.decode()
    assert ModelRecord.objects.filter(pk=record.pk).exists()
    response = staff.post(f"/ui/models/{record.pk}/delete")
    assert response.status_code == 302 and response["Location"] == "/"
    assert not ModelRecord.objects.filter(pk=record.pk).exists()
    entry = AuditEntry.objects.get()
    assert (entry.actor_name, entry.action, entry.target) == ("boss", "model_deleted", record.name)
    # The file lies outside the models folder: it is the user's own and stays.
    assert Path(record.path).exists()


def _jsonl(*lines: dict[str, object]) -> bytes:
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


def _chat_line(custom_id: str, model: str = "tiny:latest") -> dict[str, object]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": "hi"}]},
    }


def _upload(web: Client, content: bytes, endpoint: str = "/v1/chat/completions") -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("lines.jsonl", content, content_type="application/jsonl")
    return web.post(
        "/ui/batches/", {"file": upload, "endpoint": endpoint, "completion_window": "24h"}
    )


def test_uploading_a_jsonl_file_creates_a_batch_of_its_lines(
    viewer: Client, record: ModelRecord
) -> None:
    response = _upload(viewer, _jsonl(_chat_line("a"), _chat_line("b")))
    assert response.status_code == 302
    batch = BatchJob.objects.get()
    assert batch.status == BatchStatus.IN_PROGRESS
    assert batch.input_file.purpose == FilePurpose.BATCH
    assert batch.request_counts() == {"total": 2, "completed": 0, "failed": 0}
    page = viewer.get("/ui/batches/", headers=HTML).content.decode()
    assert batch.pk in page and "0 completed, 0 failed of 2" in page


def test_an_invalid_batch_file_fails_and_shows_why(viewer: Client, record: ModelRecord) -> None:
    _upload(viewer, b"not json\n")
    batch = BatchJob.objects.get()
    assert batch.status == BatchStatus.FAILED
    page = viewer.get(f"/ui/batches/{batch.pk}/", headers=HTML).content.decode()
    assert "this line is not valid JSON" in page


def test_an_unknown_endpoint_is_refused_and_the_upload_dropped(
    viewer: Client, record: ModelRecord
) -> None:
    response = _upload(viewer, _jsonl(_chat_line("a")), endpoint="/v1/images")
    assert response.status_code == 200
    assert "endpoint must be one of" in response.content.decode()
    assert not BatchJob.objects.exists() and not StoredFile.objects.exists()


def test_batch_progress_follows_request_counts(viewer: Client, record: ModelRecord) -> None:
    _upload(viewer, _jsonl(*(_chat_line(str(i)) for i in range(4))))
    batch = BatchJob.objects.get()
    first, second, *_ = batch.lines.order_by("line_number")
    for line, status in ((first, LineStatus.COMPLETED), (second, LineStatus.FAILED)):
        line.status = status
        line.save()
    body = viewer.get(f"/ui/batches/{batch.pk}/", headers=HTMX).content.decode()
    assert 'data-percent="50"' in body
    assert "1 completed, 1 failed of 4" in body
    assert 'hx-trigger="every 1s"' in body


def test_staff_can_cancel_a_batch_and_a_viewer_cannot(web: Client, record: ModelRecord) -> None:
    User.objects.create_user("viewer", password="pw")
    User.objects.create_user("boss", password="pw", is_staff=True)
    web.login(username="viewer", password="pw")
    _upload(web, _jsonl(_chat_line("a")))
    batch = BatchJob.objects.get()
    assert web.post(f"/ui/batches/{batch.pk}/cancel").status_code == 403
    web.login(username="boss", password="pw")
    assert web.post(f"/ui/batches/{batch.pk}/cancel").status_code == 302
    batch.refresh_from_db()
    assert batch.status == BatchStatus.CANCELLED
    assert batch.lines.get().status == LineStatus.CANCELLED


def test_a_finished_batch_offers_its_output_and_error_files(viewer: Client) -> None:
    source = StoredFile.create(FilePurpose.BATCH, "in.jsonl", b"{}\n")
    output = StoredFile.create(FilePurpose.BATCH_OUTPUT, "b_output.jsonl", b'{"custom_id": "a"}\n')
    errors = StoredFile.create(FilePurpose.BATCH_OUTPUT, "b_error.jsonl", b'{"custom_id": "b"}\n')
    batch = BatchJob.objects.create(
        endpoint="/v1/chat/completions",
        input_file=source,
        status=BatchStatus.COMPLETED,
        output_file=output,
        error_file=errors,
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    body = viewer.get(f"/ui/batches/{batch.pk}/", headers=HTML).content.decode()
    assert f"/ui/files/{output.pk}/download" in body and f"/ui/files/{errors.pk}/download" in body
    assert "Cancel batch" not in body
    download = viewer.get(f"/ui/files/{output.pk}/download")
    assert download.content == b'{"custom_id": "a"}\n'
    assert download["Content-Disposition"] == 'attachment; filename="b_output.jsonl"'


def test_the_playground_offers_ready_models_and_asks_a_key_only_when_keys_are_required(
    viewer: Client, record: ModelRecord, settings: Any
) -> None:
    ModelRecord.objects.create(name="coming:latest", path="/x", status=ModelStatus.PENDING)
    page = viewer.get("/ui/playground/?model=tiny:latest", headers=HTML).content.decode()
    assert '<option value="tiny:latest" selected>' in page
    assert "coming:latest" not in page
    assert 'id="api-key"' not in page
    settings.HERD_AUTH_REQUIRED = True
    assert 'id="api-key"' in viewer.get("/ui/playground/", headers=HTML).content.decode()


def test_static_files_are_served_with_an_etag(web: Client) -> None:
    response = web.get("/static/htmx.min.js")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/javascript"
    assert b"htmx" in response.content
    again = web.get("/static/htmx.min.js", HTTP_IF_NONE_MATCH=response["ETag"])
    assert again.status_code == 304
    assert web.get("/static/admin/css/base.css").status_code == 200


def test_static_files_stay_inside_the_static_folders(web: Client) -> None:
    for path in ("/static/../project/settings.py", "/static/%2e%2e/manage.py", "/static/nope.js"):
        assert web.get(path).status_code == 404
