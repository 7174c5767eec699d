"""The remote control commands a worker answers (web sends them: ``workers.broker.control``).

The worker command imports this module so that the commands are registered before the worker
starts consuming.
"""

from __future__ import annotations

from typing import Any

from celery.worker.control import control_command

from workers.worker.runtime import runtime


@control_command(args=[("model_id", int)], signature="<model_id>")
def herd_unload_model(state: Any, model_id: int) -> dict[str, str]:
    """Drop a model this worker holds (its record was deleted)."""
    held = runtime()
    # Only a worker that has loaded something has a residency: one made here would hold nothing.
    if "residency" in held.__dict__:
        held.residency.unload(int(model_id))
    return {"ok": f"model {model_id} unloaded"}
