"""Keys sharing a model take turns: a key with many requests queued does not make another
key's single request wait behind all of them (``workers.broker.fairness``)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import llama_cpp

from tests.keyed import KEYED_PARALLEL, KeyedServer
from tests.waiting import wait_until
from workers.engine.jobs import INTERACTIVE, SerialEngine
from workers.engine.slots import Slot

HEAVY_REQUESTS = 20


def test_the_engine_serves_each_sharers_first_waiting_job_first(tiny_gguf: Path) -> None:
    engine = SerialEngine("tiny", llama_cpp.Llama(str(tiny_gguf), n_ctx=64, verbose=False))
    ran: list[str] = []
    started, gate = threading.Event(), threading.Event()

    def block(_slot: Slot) -> None:
        started.set()
        gate.wait(10)

    try:
        blocker = engine.run_on_slot(block, sharer="a")
        assert started.wait(10)  # running, so no longer waiting: a1 is a's first waiting job

        def note(name: str) -> Callable[[Slot], None]:
            return lambda _slot: ran.append(name)

        jobs = [
            engine.run_on_slot(note(name), lane=INTERACTIVE, sharer=sharer)
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


def make_key(server: KeyedServer, name: str) -> tuple[str, str]:
    """A new key's secret and id (the id names its fair-turn sets)."""
    reply = server.call("POST", "/herd/keys", server.staff_secret, json={"name": name})
    assert reply.status_code == 201, reply.text
    created = reply.json()
    return created["secret"], str(created["id"])


def have_taken_their_turns(server: KeyedServer, key_id: str, request_ids: list[str]) -> bool:
    """Whether the web has sent every one of ``request_ids`` (the key's) to the worker with
    its turn: each is in the key's set of requests waiting for the worker
    (``workers.broker.fairness.waiting_set``), or the worker has taken it since (it leaves the
    set, then starts its event stream). Read in that order (one pipeline, run in order), a
    request between the two shows in neither and is looked for again; one that shows has
    taken its turn."""
    (worker,) = server.workers()
    # The server keeps each X-Request-Id in its key's namespace.
    request_ids = [f"k{key_id}-{request_id}" for request_id in request_ids]
    pipe = server.redis().pipeline(transaction=False)
    pipe.zrange(f"{server.namespace}:fair:{worker['name']}:{key_id}", 0, -1)
    for request_id in request_ids:
        pipe.exists(f"{server.namespace}:req:{request_id}")
    members, *started = pipe.execute()
    waiting = {m.decode() for m in members}
    return all(r in waiting or s for r, s in zip(request_ids, started, strict=True))


def test_a_light_key_is_not_queued_behind_a_heavy_one(keyed_server: KeyedServer) -> None:
    heavy, heavy_id = make_key(keyed_server, "fair-heavy")
    light = keyed_server.create_key("fair-light")
    body = {"model": "slow", "prompt": "hello", "max_tokens": 60, "temperature": 0}
    heavy_ids = [f"fair-heavy-{uuid.uuid4().hex[:12]}-{i}" for i in range(HEAVY_REQUESTS)]
    finished_heavy: list[float] = []

    def heavy_request(request_id: str) -> int:
        headers = {"X-Request-Id": request_id}
        reply = keyed_server.call("POST", "/v1/completions", heavy, json=body, headers=headers)
        finished_heavy.append(time.monotonic())
        return reply.status_code

    with ThreadPoolExecutor(max_workers=HEAVY_REQUESTS) as pool:
        heavy_replies = pool.map(heavy_request, heavy_ids)
        # The light request comes once every heavy one has its turn, and no later: a heavy
        # request finished before it was sent would count against it.
        wait_until(
            lambda: have_taken_their_turns(keyed_server, heavy_id, heavy_ids),
            timeout=30,
            what="every heavy request sent to the worker",
        )
        sent = time.monotonic()
        light_reply = keyed_server.call("POST", "/v1/completions", light, json=body)
        light_done = time.monotonic()
        assert all(status == 200 for status in heavy_replies)
    assert light_reply.status_code == 200, light_reply.text
    heavy_done = max(finished_heavy)
    ahead = sum(1 for t in finished_heavy if t <= light_done)
    # In arrival order the light request would finish after every heavy one the worker had
    # taken (up to HERD_WORKER_THREADS: all twenty). Taking turns, it waits at most for the heavy
    # requests decoding when it came and the next round of them, if one had just begun (the
    # heavy key's first waiting request has a turn as early as the light one's); the heavy
    # ones that join the engine with it may finish in the same step.
    assert ahead <= 3 * KEYED_PARALLEL - 1, (ahead, light_done - sent, heavy_done - sent)
    assert heavy_done - light_done > 0.25 * (heavy_done - sent)
