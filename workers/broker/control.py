"""Remote control commands that web broadcasts to every worker (Celery's control bus).

Replies are not awaited: a worker that is down holds nothing to unload. The worker side is
``workers.worker.control``; a command's name is the name of its function there.
"""

from __future__ import annotations

UNLOAD_MODEL = "herd_unload_model"


def unload_everywhere(model_id: int) -> None:
    """Ask every worker to unload ``model_id``."""
    from project.celery import app

    app.control.broadcast(UNLOAD_MODEL, arguments={"model_id": model_id}, reply=False)
