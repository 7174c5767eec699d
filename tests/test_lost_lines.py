"""A batch line whose message the broker lost (or whose delivery a worker dropped) is found and
sent again; one whose message is waiting in a lane or was just delivered is left alone."""

from __future__ import annotations

import base64
import json
import time
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from tests.batch_rows import running_batch
from tests.live import LiveServer


def celery_message(*line_ids: int) -> str:
    """A batch-lines task message as Celery lays it in a Redis list: its one argument is the
    list of lines it carries."""
    body = base64.b64encode(json.dumps([[list(line_ids)], {}, {}]).encode()).decode()
    return json.dumps({"body": body, "headers": {"task": "herd.batch_line"}, "properties": {}})


@pytest.mark.django_db
def test_only_lines_whose_message_is_nowhere_are_released(
    server: LiveServer, settings: Any
) -> None:
    from inference_app.batches.models import BatchLine, LineStatus
    from inference_app.batches.recovery import release_lost_lines
    from workers.broker.queues import list_key

    settings.HERD_NAMESPACE = server.namespace
    client = server.redis()
    batch = running_batch()
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
    beside = line("beside", long_ago)  # in the same message as "waiting"
    held = line("held", long_ago)
    dropped = line("dropped", long_ago)  # delivered long ago, and its task never started
    just_sent = line("just-sent", timezone.now())
    lane = list_key(f"{server.namespace}.worker.w1@host.batch")
    client.lpush(lane, celery_message(waiting, beside))
    deliveries = (("held", held, time.time()), ("dropped", dropped, time.time() - 300))
    for tag, line_id, delivered_at in deliveries:
        delivery = json.dumps([json.loads(celery_message(line_id)), "", "batch"])
        client.hset(list_key("unacked"), tag, delivery)
        client.zadd(list_key("unacked_index"), {tag: delivered_at})
    try:
        assert release_lost_lines(client, older_than=30) == 2
    finally:
        client.delete(lane)
        client.hdel(list_key("unacked"), "held", "dropped")
        client.zrem(list_key("unacked_index"), "held", "dropped")

    statuses = dict(BatchLine.objects.values_list("pk", "status"))
    assert statuses == {
        lost: LineStatus.PENDING,
        waiting: LineStatus.QUEUED,
        beside: LineStatus.QUEUED,
        held: LineStatus.QUEUED,
        dropped: LineStatus.PENDING,
        just_sent: LineStatus.QUEUED,
    }


def test_lines_go_out_eight_to_a_message_in_file_order() -> None:
    # A lane's message carries several lines, so that a worker pays one message, one claim
    # and one commit for them.
    from inference_app.batches.services import LINES_PER_MESSAGE, line_messages

    assert LINES_PER_MESSAGE == 8
    first, second = list(range(1, 21)), [30, 31]

    messages = line_messages({"w1.batch": first, "w2.batch": second})

    assert messages == [
        ("w1.batch", first[0:8]),
        ("w1.batch", first[8:16]),
        ("w1.batch", first[16:20]),
        ("w2.batch", second),
    ]


@pytest.mark.django_db
def test_a_message_claims_only_its_queued_lines_and_only_once() -> None:
    from inference_app.batches.models import BatchLine, LineStatus
    from inference_app.batches.services import do_claim_lines

    batch = running_batch()

    def line(n: int, status: str) -> int:
        return BatchLine.objects.create(
            batch=batch, line_number=n, custom_id=f"c{n}", model_name="tiny", body={}, status=status
        ).pk

    first, done, third = (
        line(1, LineStatus.QUEUED),
        line(2, LineStatus.COMPLETED),
        line(3, LineStatus.QUEUED),
    )

    claimed = do_claim_lines([third, done, first], "w1")

    assert [c.pk for c in claimed] == [third, first]  # the message's order, the done one left
    assert all(c.status == LineStatus.RUNNING and c.attempts == 1 for c in claimed)
    assert all(c.worker_instance == "w1" and c.batch.pk == batch.pk for c in claimed)
    assert do_claim_lines([first, third], "w2") == []  # a second delivery runs nothing
