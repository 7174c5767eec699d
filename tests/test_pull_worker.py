"""The worker's side of a pull, run in this process against the fake hub: the disk check
before any byte is fetched, resuming a partial file, and the orphan reaper."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_django.fixtures import Settings

from models_app.hub import partial_path
from models_app.models import ModelRecord, PullJob, PullStatus
from models_app.pulls import check_pull_reference, do_start_pull, requeue_orphaned_pulls
from tests.hub_server import FakeHub, point_huggingface_hub_at
from workers.worker.pulls import run_pull

pytestmark = pytest.mark.django_db


@pytest.fixture
def models_dir(settings: Settings, tmp_path: Path) -> Path:
    settings.MODELS_DIR = tmp_path / "models"
    settings.HERD_DISK_RESERVE = 0
    return Path(settings.MODELS_DIR)


@pytest.fixture
def hub_endpoint(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    point_huggingface_hub_at(hub.url, monkeypatch)
    return hub


def start(reference: str, callbacks: Callable[..., Any]) -> PullJob:
    with callbacks(execute=False):  # the send to the broker: this test runs the job itself
        job, joined = do_start_pull(check_pull_reference(reference))
    assert not joined
    return job


def test_the_worker_refuses_when_the_disk_filled_up_meanwhile(
    models_dir: Path,
    hub_endpoint: FakeHub,
    settings: Settings,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start("hf.co/tester/tiny-GGUF:Q8_0", django_capture_on_commit_callbacks)
    settings.HERD_DISK_RESERVE = 10**18
    sent_before = hub_endpoint.bytes_sent("tester/tiny-GGUF", "tiny-Q8_0.gguf")
    run_pull(job.pk, "me")
    job.refresh_from_db()
    assert job.status == PullStatus.FAILED
    assert "not enough disk space" in job.error
    assert hub_endpoint.bytes_sent("tester/tiny-GGUF", "tiny-Q8_0.gguf") == sent_before
    assert not ModelRecord.objects.exists()


def test_the_worker_resumes_a_partial_file(
    models_dir: Path,
    hub_endpoint: FakeHub,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start("hf.co/tester/noquant-GGUF:F16", django_capture_on_commit_callbacks)
    data = hub_endpoint.repos["tester/noquant-GGUF"].files["n-F16.gguf"]
    partial = partial_path(hashlib.sha256(data).hexdigest())
    partial.parent.mkdir(parents=True)
    partial.write_bytes(data[:100_000])
    run_pull(job.pk, "me")
    job.refresh_from_db()
    assert job.status == PullStatus.READY, job.error
    (transfer,) = hub_endpoint.transfers_of("tester/noquant-GGUF", "n-F16.gguf")[-1:]
    assert (transfer.start, transfer.sent) == (100_000, len(data) - 100_000)
    record = ModelRecord.objects.get(name="hf.co/tester/noquant-GGUF:F16")
    assert Path(record.path).read_bytes() == data
    assert record.sha256 == hashlib.sha256(data).hexdigest()
    assert not partial.exists()


def test_a_delivery_of_a_job_that_is_not_queued_does_nothing(
    models_dir: Path,
    hub_endpoint: FakeHub,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    job = start("hf.co/tester/tiny-GGUF:Q8_0", django_capture_on_commit_callbacks)
    PullJob.objects.filter(pk=job.pk).update(status=PullStatus.DOWNLOADING, worker_instance="b")
    run_pull(job.pk, "me")
    job.refresh_from_db()
    assert (job.status, job.worker_instance, job.attempts) == (PullStatus.DOWNLOADING, "b", 0)


def test_orphaned_pulls_go_back_to_the_queue(
    monkeypatch: pytest.MonkeyPatch, models_dir: Path
) -> None:
    sent: list[int] = []
    monkeypatch.setattr("models_app.pulls.send_pull", sent.append)  # the broker's side
    fields = {"repo_id": "o/r", "revision": "c" * 40}
    alive = PullJob.objects.create(
        name="a:1", status=PullStatus.DOWNLOADING, worker_instance="alive", **fields
    )
    dead = PullJob.objects.create(
        name="b:1", status=PullStatus.VERIFYING, worker_instance="dead", **fields
    )
    done = PullJob.objects.create(
        name="c:1", status=PullStatus.READY, worker_instance="dead", **fields
    )
    assert requeue_orphaned_pulls({"alive"}) == 1
    assert sent == [dead.pk]
    statuses = dict(PullJob.objects.values_list("pk", "status"))
    assert statuses == {
        alive.pk: PullStatus.DOWNLOADING,
        dead.pk: PullStatus.QUEUED,
        done.pk: PullStatus.READY,
    }
