"""Names of everything Herd keeps in Redis and of its Celery queues, in one place.

Every name carries ``HERD_NAMESPACE`` so that installations (and test runs) sharing a Redis
never see each other's work. No Django models or llama.cpp here: web and workers both import it.
"""

from __future__ import annotations

from django.conf import settings


def _ns() -> str:
    return str(settings.HERD_NAMESPACE)


def request_stream(request_id: str) -> str:
    """The stream a worker appends a request's events to, and web relays."""
    return f"{_ns()}:req:{request_id}"


def cancel_flag(request_id: str) -> str:
    """Set by web when the client has gone; the engine checks it between tokens."""
    return f"{_ns()}:cancel:{request_id}"


def relay_wake_stream(hub_id: str) -> str:
    """Written to when a request joins a web process's stream reader, to end its wait."""
    return f"{_ns()}:relay-wake:{hub_id}"


def request_claim(request_id: str) -> str:
    """Set by the first worker thread that takes the request."""
    return f"{_ns()}:claim:{request_id}"


def worker_heartbeat(worker_name: str) -> str:
    """Exists (with a short TTL) while the worker is alive."""
    return f"{_ns()}:worker:{worker_name}"


def worker_registry() -> str:
    """A set of the names of registered workers."""
    return f"{_ns()}:workers"


def pulls_queue() -> str:
    """The Celery queue of model pulls (huggingface_hub downloads)."""
    return f"{_ns()}.pulls"


def interactive_lane(worker_name: str) -> str:
    """The Celery queue of the interactive requests sent to one worker."""
    return f"{_ns()}.worker.{worker_name}.interactive"


def unrouted_lane() -> str:
    """Interactive requests sent while no worker is alive: every worker takes from it, after
    its own lanes, so the first to come up serves them."""
    return f"{_ns()}.unrouted.interactive"


def batch_lane(worker_name: str) -> str:
    """The Celery queue of the batch lines sent to one worker."""
    return f"{_ns()}.worker.{worker_name}.batch"
