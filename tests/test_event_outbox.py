"""The worker's outbox: every request's events go to Redis through one thread, in order."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import redis

from tests.broker import Broker
from tests.live import free_port
from workers.broker import keys
from workers.broker.wire import STREAM_TTL_SECONDS, Delta, Done, Event, decode
from workers.worker.events import BackgroundPublisher, EventPublisher


def stream_of(client: redis.Redis, request_id: str) -> list[Event]:
    entries: Any = client.xrange(keys.request_stream(request_id))
    return [decode(fields[b"e"]) for _, fields in entries]


def publish_answer(sink: BackgroundPublisher, pieces: list[str]) -> None:
    for piece in pieces:
        sink.emit(Delta(piece, 1))
        time.sleep(0.001)  # some deltas go out alone, some wait for the next round trip
    sink.emit(Done("stop"))
    sink.close()


def test_concurrent_requests_each_get_their_own_events_in_order(broker: Broker) -> None:
    client = broker.redis()
    answers = {f"outbox-{time.time_ns()}-{n}": [f"<{n}:{i}>" for i in range(200)] for n in range(8)}
    sinks = {rid: BackgroundPublisher(EventPublisher(client, rid)) for rid in answers}
    threads = [
        threading.Thread(target=publish_answer, args=(sinks[rid], pieces))
        for rid, pieces in answers.items()
    ]
    for thread in threads:
        thread.start()
    never_set = threading.Event()
    for sink in sinks.values():
        sink.pump(never_set)  # returns once the request's last event is out
    for thread in threads:
        thread.join()

    for rid, pieces in answers.items():
        events = stream_of(client, rid)
        deltas = [e for e in events if isinstance(e, Delta)]
        assert "".join(d.text for d in deltas) == "".join(pieces)
        assert sum(d.tokens for d in deltas) == len(pieces)
        assert events[-1] == Done("stop")
        assert 0 < int(client.ttl(keys.request_stream(rid))) <= STREAM_TTL_SECONDS


def test_deltas_waiting_for_a_round_trip_go_out_as_one_event(broker: Broker) -> None:
    client = broker.redis()
    request_id = f"outbox-merge-{time.time_ns()}"
    sink = BackgroundPublisher(EventPublisher(client, request_id))
    pieces = [f"<{i}>" for i in range(5)]
    # Writes wait while the broker is paused: the outbox's first round trip (the first delta
    # at most) is held, and every delta after it queues behind it.
    client.client_pause(10_000, all=False)
    try:
        for piece in pieces:
            sink.emit(Delta(piece, 1))
    finally:
        client.client_unpause()
    sink.emit(Done("stop"))
    sink.close()
    sink.pump(threading.Event())
    events = stream_of(client, request_id)
    deltas = [e for e in events if isinstance(e, Delta)]
    assert "".join(d.text for d in deltas) == "".join(pieces)
    assert len(deltas) <= 2 and sum(d.tokens for d in deltas) == len(pieces)
    assert events[-1] == Done("stop")


def test_emit_turns_false_once_the_client_cancels(broker: Broker) -> None:
    client = broker.redis()
    request_id = f"outbox-cancel-{time.time_ns()}"
    sink = BackgroundPublisher(EventPublisher(client, request_id))
    assert sink.emit(Delta("a", 1))
    client.set(keys.cancel_flag(request_id), 1, ex=60)
    deadline = time.monotonic() + 5
    while sink.emit(Delta("b", 1)):
        assert time.monotonic() < deadline, "the cancel flag never reached the engine"
        time.sleep(0.01)
    sink.close()
    sink.pump(threading.Event())


def test_a_broken_redis_fails_its_requests_and_not_the_others(broker: Broker) -> None:
    gone = redis.Redis(port=free_port(), socket_connect_timeout=1)
    lost = BackgroundPublisher(EventPublisher(gone, f"outbox-lost-{time.time_ns()}"))
    lost.emit(Delta("a", 1))
    lost.close()
    with pytest.raises(redis.ConnectionError):
        lost.pump(threading.Event())

    request_id = f"outbox-after-{time.time_ns()}"
    sink = BackgroundPublisher(EventPublisher(broker.redis(), request_id))
    publish_answer(sink, ["still", " here"])
    sink.pump(threading.Event())
    assert isinstance(stream_of(broker.redis(), request_id)[-1], Done)


def test_a_job_that_never_ran_does_not_wait_for_events() -> None:
    sink = BackgroundPublisher(EventPublisher(redis.Redis(port=free_port()), "never-ran"))
    finished = threading.Event()
    finished.set()
    started = time.monotonic()
    sink.pump(finished)
    assert time.monotonic() - started < 1
