"""Remote control commands that web broadcasts to every worker (Celery's control bus).

The worker command imports this module so that the commands are registered before the worker
starts consuming. Replies are not awaited: a worker that is down holds nothing to unload.
"""

from __future__ import annotations

from typing import Any

from celery.worker.control import control_command

UNLOAD_MODEL = "herd_unload_model"


@control_command(args=[("model_id", int)], signature="<model_id>")
def herd_unload_model(state: Any, model_id: int) -> dict[str, str]:
    """Drop a model this worker holds (its record was deleted)."""
    from workers.runtime import runtime

    held = runtime()
    # Only a worker that has loaded something has a residency; creating one here would import
    # llama.cpp for nothing.
    if "residency" in held.__dict__:
        held.residency.unload(int(model_id))
    return {"ok": f"model {model_id} unloaded"}


def unload_everywhere(model_id: int) -> None:
    """Ask every worker to unload ``model_id``."""
    from project.celery import app

    app.control.broadcast(UNLOAD_MODEL, arguments={"model_id": model_id}, reply=False)
