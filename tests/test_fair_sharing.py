"""Keys sharing a model take turns: a key with many requests queued does not make another
key's single request wait behind all of them (``workers.broker.fairness``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llama_cpp

from tests.keyed import KeyedServer
from workers.engine.jobs import INTERACTIVE, SerialEngine
from workers.worker.residency import DEFAULT_PARALLEL

HEAVY_REQUESTS = 20


def test_the_engine_serves_each_sharers_first_waiting_job_first(tiny_gguf: Path) -> None:
    engine = SerialEngine("tiny", llama_cpp.Llama(str(tiny_gguf), n_ctx=64, verbose=False))
    ran: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def block(_llama: llama_cpp.Llama) -> None:
        started.set()
        gate.wait(10)

    try:
        blocker = engine.submit(block, sharer="a")
        assert started.wait(10)  # running, so no longer waiting: a1 is a's first waiting job

        def note(name: str) -> Callable[[llama_cpp.Llama], None]:
            return lambda _llama: ran.append(name)

        jobs = [
            engine.submit(note(name), lane=INTERACTIVE, sharer=sharer)
            for name, sharer in (
                ("a1", "a"),
                ("a2", "a"),
                ("a3", "a"),
                ("b1", "b"),
                ("anonymous", None),
                ("a4", "a"),
                ("b2", "b"),
            )
        ]
        gate.set()
        blocker.wait()
        for job in jobs:
            job.wait()
    finally:
        engine.close()
    # Turn 0 of everyone (in arrival order), then turn 1 of everyone, and so on.
    assert ran == ["a1", "b1", "anonymous", "a2", "b2", "a3", "a4"]


def test_a_light_key_is_not_queued_behind_a_heavy_one(keyed_server: KeyedServer) -> None:
    heavy = keyed_server.create_key("fair-heavy")
    light = keyed_server.create_key("fair-light")
    body = {"max_tokens": 60, "temperature": 0}
    finished_heavy: list[float] = []

    def heavy_request(_: int) -> int:
        reply = keyed_server.complete(heavy, model="slow", **body)
        finished_heavy.append(time.monotonic())
        return reply.status_code

    with ThreadPoolExecutor(max_workers=HEAVY_REQUESTS) as pool:
        heavy_replies = pool.map(heavy_request, range(HEAVY_REQUESTS))
        time.sleep(1.0)  # every heavy request is queued before the light one is sent
        sent = time.monotonic()
        light_reply = keyed_server.complete(light, model="slow", **body)
        light_done = time.monotonic()
        assert all(status == 200 for status in heavy_replies)
    assert light_reply.status_code == 200, light_reply.text
    heavy_done = max(finished_heavy)
    ahead = sum(1 for t in finished_heavy if t <= light_done)
    # In arrival order the light request would finish after every heavy one the worker had
    # taken (HERD_WORKER_THREADS, 16 of them). Taking turns, it waits at most for the heavy
    # requests decoding when it came and the next round of them, if one had just begun (the
    # heavy key's first waiting request has a turn as early as the light one's); the heavy
    # ones that join the engine with it may finish in the same step.
    parallel = DEFAULT_PARALLEL["cpu"]
    assert ahead <= 3 * parallel - 1, (ahead, light_done - sent, heavy_done - sent)
    assert heavy_done - light_done > 0.25 * (heavy_done - sent)
