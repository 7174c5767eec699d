"""A batch line whose message the broker lost is found and sent again; one whose message is
waiting in a lane or held by a worker is left alone."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.live import LiveServer


def celery_message(line_id: int) -> str:
    """A batch-line task message as Celery lays it in a Redis list."""
    body = base64.b64encode(json.dumps([[line_id], {}, {}]).encode()).decode()
    return json.dumps({"body": body, "headers": {"task": "herd.batch_line"}, "properties": {}})


@pytest.mark.django_db
def test_only_lines_whose_message_is_nowhere_are_released(
    server: LiveServer, settings: Any
) -> None:
    from inference_app.batches.files import StoredFile
    from inference_app.batches.models import BatchJob, BatchLine, BatchStatus, LineStatus
    from workers.broker.queues import list_key
    from workers.broker.reroute import release_lost_lines

    settings.HERD_NAMESPACE = server.namespace
    client = server.redis()
    upload = StoredFile.objects.create(purpose="batch", filename="x.jsonl", size=1)
    batch = BatchJob.objects.create(
        endpoint="/v1/completions",
        input_file=upload,
        status=BatchStatus.IN_PROGRESS,
        expires_at=timezone.now() + timedelta(days=1),
    )
    long_ago = timezone.now() - timedelta(minutes=5)

    def line(name: str, queued_at: Any) -> int:
        created = BatchLine.objects.create(
            batch=batch,
            line_number=BatchLine.objects.count() + 1,
            custom_id=name,
            model_name="tiny",
            body={},
            status=LineStatus.QUEUED,
            queued_at=queued_at,
        )
        return created.pk

    lost = line("lost", long_ago)
    waiting = line("waiting", long_ago)
    held = line("held", long_ago)
    just_sent = line("just-sent", timezone.now())
    client.lpush(list_key(f"{server.namespace}.worker.w1@host.batch"), celery_message(waiting))
    client.hset(
        list_key("unacked"),
        f"tag-{held}",
        json.dumps([json.loads(celery_message(held)), "", "batch"]),
    )
    try:
        assert release_lost_lines(client, older_than=30) == 1
    finally:
        client.delete(list_key(f"{server.namespace}.worker.w1@host.batch"))
        client.hdel(list_key("unacked"), f"tag-{held}")

    statuses = dict(BatchLine.objects.values_list("pk", "status"))
    assert statuses == {
        lost: LineStatus.PENDING,
        waiting: LineStatus.QUEUED,
        held: LineStatus.QUEUED,
        just_sent: LineStatus.QUEUED,
    }
