"""Which worker a request goes to: one that holds its model, else one with room to load it.

Each worker consumes only its own lanes, so this choice is the whole of routing: a model is
loaded where the first request for it is sent, later requests follow it there, and replicas on
several workers share the load by the depth of their interactive lanes.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

import redis

from workers.broker import keys
from workers.broker.fairness import LEVELS
from workers.broker.queues import lane_lists


class NoWorker(RuntimeError):
    """No worker is alive to take the request."""


@dataclass(frozen=True)
class Candidate:
    name: str
    info: dict[str, Any]
    waiting: int  # requests in its interactive lane

    @property
    def free(self) -> float:
        budget = int(self.info.get("budget") or 0)
        return float("inf") if not budget else budget - int(self.info.get("memory_used") or 0)


def candidates(client: redis.Redis) -> list[Candidate]:
    """Live workers with their interactive lane depths, in two round trips."""
    members: Any = client.smembers(keys.worker_registry())
    names = sorted(n.decode() for n in members)
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(keys.worker_heartbeat(name))
        for lane_list in lane_lists(keys.interactive_lane(name)):
            pipe.llen(lane_list)
    replies = pipe.execute()
    found = []
    stride = 1 + LEVELS
    for index, name in enumerate(names):
        raw = replies[stride * index]
        waiting = sum(int(n) for n in replies[stride * index + 1 : stride * (index + 1)])
        if raw is not None:
            found.append(Candidate(name, json.loads(raw), waiting))
    return found


def choose_worker(
    client: redis.Redis, model_name: str, model_size: int, pinned_to: list[str] | None = None
) -> Candidate:
    """Among the live workers the model is pinned to (all live workers when none is): the
    least busy holding ``model_name``; else the least busy with room for it; else the one with
    the most room (it evicts idle models, or says why it cannot)."""
    return choose_among(candidates(client), model_name, model_size, pinned_to)


def choose_among(
    workers: list[Candidate], model_name: str, model_size: int, pinned_to: list[str] | None
) -> Candidate:
    """``choose_worker`` over ``workers`` as ``candidates`` read them: several choices made on
    one reading cost its round trips once."""
    if pinned_to:
        workers = [w for w in workers if w.name in pinned_to] or workers
    if not workers:
        raise NoWorker("no worker is running to serve this model")
    holding = [w for w in workers if model_name in w.info.get("resident", [])]
    with_room = [w for w in workers if w.free >= model_size]
    pool = holding or with_room
    if not pool:
        return max(workers, key=lambda w: w.free)
    # Random among equals, so that idle replicas share a burst of requests.
    return min(pool, key=lambda w: (w.waiting, random.random()))
