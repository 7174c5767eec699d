"""Worker lifecycle hooks: offer the batch app a line server as the worker starts, start the
heartbeat when Celery is ready, stop it on shutdown."""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery.signals import worker_init, worker_ready, worker_shutdown

from workers.broker.line_server import offer_line_server
from workers.worker.batch import WorkerLineServer
from workers.worker.heartbeat import Heartbeat
from workers.worker.runtime import runtime

log = logging.getLogger(__name__)
_heartbeat: Heartbeat | None = None


@worker_init.connect
def serve_batch_lines(**_: Any) -> None:
    """Before any task arrives: the batch app's line runner serves its lines through this."""
    offer_line_server(WorkerLineServer())


@worker_ready.connect
def start_heartbeat(**_: Any) -> None:
    global _heartbeat
    state = runtime()
    _heartbeat = Heartbeat(state.redis, state.name, state.instance, state.device)
    _heartbeat.start()
    threading.Thread(target=load_pinned_models, name="preload", daemon=True).start()


def load_pinned_models() -> None:
    """Load the models an admin pinned to this worker, so their first request finds them."""
    from django.db import close_old_connections

    from models_app.models import ModelRecord, ModelStatus

    state = runtime()
    try:
        records = list(
            ModelRecord.objects.filter(placements__worker=state.name, status=ModelStatus.READY)
        )
        for record in records:
            resident = state.residency.get(record.to_spec())
            state.residency.release(resident, keep_alive=-1)
            log.info("loaded %s, pinned to this worker", record.name)
    except Exception:
        log.exception("loading the models pinned to this worker failed")
    finally:
        close_old_connections()


@worker_shutdown.connect
def stop_heartbeat(**_: Any) -> None:
    if _heartbeat is not None:
        _heartbeat.stop()
