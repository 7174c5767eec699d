"""The workers page and the catalog's residency column, read from a real worker registry:
heartbeats written by ``workers.worker.heartbeat.beat_once`` into the live server's broker, under a
namespace of this test's own so the live server's worker stays out of it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from models_app.models import ModelRecord
from tests.live import LiveServer
from workers.broker import keys
from workers.broker.registry import beat_once

pytestmark = pytest.mark.django_db
HTML = {"Accept": "text/html"}


@pytest.fixture
def registry(server: LiveServer, settings: Any) -> Iterator[redis.Redis]:
    settings.REDIS_URL = server.redis_url
    settings.HERD_NAMESPACE = namespace = f"pages-{uuid.uuid4().hex[:8]}"
    settings.HERD_HEARTBEAT_TTL = 30.0
    client = server.redis()
    yield client
    for key in client.scan_iter(f"{namespace}:*"):
        client.delete(key)


@pytest.fixture
def web() -> Client:
    User.objects.create_user("viewer", password="pw")
    client = Client()
    client.login(username="viewer", password="pw")
    return client


def celery_message(args: list[Any]) -> str:
    body = base64.b64encode(json.dumps([args, {}, {}]).encode()).decode()
    return json.dumps({"body": body, "headers": {}, "properties": {}})


def queued_batch_line(model: str) -> None:
    from inference_app.batches.files import StoredFile
    from inference_app.batches.models import BatchJob, BatchLine, BatchStatus, LineStatus

    upload = StoredFile.objects.create(purpose="batch", filename="x.jsonl", size=1)
    batch = BatchJob.objects.create(
        endpoint="/v1/completions",
        input_file=upload,
        status=BatchStatus.IN_PROGRESS,
        expires_at=timezone.now(),
    )
    BatchLine.objects.create(
        batch=batch,
        line_number=1,
        custom_id="c",
        model_name=model,
        body={},
        status=LineStatus.QUEUED,
    )


def celery_list(queue: str) -> str:
    """The Redis list Celery keeps ``queue`` in (its keys carry the namespace prefix)."""
    return f"{settings.HERD_NAMESPACE}:{queue}"


def heartbeat(name: str, device: str, models: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "instance": uuid.uuid4().hex,
        "host": "gpu-host",
        "pid": 4242,
        "device": device,
        "resident": [m["name"] for m in models],
        "models": models,
        "time": time.time() - 1.5,
        **extra,
    }


def test_the_workers_page_shows_device_memory_models_lanes_and_heartbeat_age(
    registry: redis.Redis, web: Client
) -> None:
    model = {"id": 7, "name": "tiny:latest", "size": 2_000_000, "expires_at": time.time() + 300}
    beat_once(
        registry,
        "cuda0@gpu-host",
        heartbeat("cuda0@gpu-host", "cuda:0", [model], budget=8_000_000, memory_used=2_000_000),
    )
    # Two requests for the model waiting in the worker's interactive lane (the list Celery
    # keeps the queue in, messages as Celery writes them), one of its batch lines queued.
    for request_id in ("a", "b"):
        registry.rpush(
            celery_list(keys.interactive_lane("cuda0@gpu-host")),
            celery_message([request_id, {"name": "tiny:latest"}, {}]),
        )
    queued_batch_line("tiny:latest")
    registry.rpush(celery_list(keys.batch_lane("cuda0@gpu-host")), celery_message([41]))
    page = web.get("/ui/workers/", headers=HTML).content.decode()
    card = page[page.index('data-worker="cuda0@gpu-host"') :]
    assert "cuda:0" in card and "gpu-host" in card and "pid 4242" in card
    assert 'data-percent="25"' in card
    assert "1.9\xa0MB of 7.6\xa0MB" in card
    assert '<span class="worker-interactive">2</span>' in card
    assert '<span class="worker-batch">1</span>' in card
    row = card[card.index('data-model="tiny:latest"') :]
    assert '<td class="lane-interactive">2</td>' in row
    assert '<td class="lane-batch">1</td>' in row
    age = float(card.split('class="heartbeat">')[1].split(" s")[0])
    assert 1.0 <= age < 10


def test_a_worker_without_a_budget_shows_what_it_holds(registry: redis.Redis, web: Client) -> None:
    beat_once(registry, "cpu@h", heartbeat("cpu@h", "cpu", []))
    page = web.get("/ui/workers/", headers=HTML).content.decode()
    assert 'data-worker="cpu@h"' in page
    assert "no memory budget reported" in page and "No model loaded." in page


def test_the_workers_page_refreshes_itself_with_a_fragment(
    registry: redis.Redis, web: Client
) -> None:
    page = web.get("/ui/workers/", headers=HTML).content.decode()
    assert 'hx-trigger="every 2s"' in page
    fragment = web.get("/ui/workers/", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in fragment and "No worker is running" in fragment


def test_a_dead_workers_page_says_the_registry_cannot_be_read(web: Client, settings: Any) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    page = web.get("/ui/workers/", headers=HTML).content.decode()
    assert "The worker registry cannot be read" in page


def test_the_catalog_shows_where_each_model_is_resident(registry: redis.Redis, web: Client) -> None:
    ModelRecord.objects.create(name="tiny:latest", path="/m/tiny.gguf")
    ModelRecord.objects.create(name="idle:latest", path="/m/idle.gguf")
    tiny = {"id": 1, "name": "tiny:latest", "size": 10}
    beat_once(registry, "cpu@a", heartbeat("cpu@a", "cpu", [tiny]))
    beat_once(registry, "cuda1@b", heartbeat("cuda1@b", "cuda:1", [tiny]))
    page = web.get("/", headers=HTML).content.decode()
    row = page[page.index('data-model="tiny:latest"') :]
    row = row[: row.index("</tr>")]
    assert '<span class="chip" title="cpu">cpu@a</span>' in row
    assert '<span class="chip" title="cuda:1">cuda1@b</span>' in row
    idle = page[page.index('data-model="idle:latest"') :]
    assert '<td class="resident">—</td>' in idle[: idle.index("</tr>")]
