"""What the log leaves out, so that an idle server is quiet at INFO and each request is one
readable line (``project.edge.request_log``).

- Beat sends its sweeps (batch expiry, dead workers, orphaned pulls) every few seconds; the
  worker's two lines for each ("received", "succeeded") are DEBUG lines.
- Django's own line for a refused API request (``Bad Request: /v1/messages``) says less than
  the request log's line, which carries the status and the reason: it is left out while the
  request log is on. Server errors keep it.
"""

from __future__ import annotations

import logging

from django.conf import settings

from workers.broker import wire

SWEEPS = (wire.EXPIRE_BATCHES, wire.REAP_DEAD_WORKERS, wire.RESUME_ORPHANED_PULLS)
CELERY_TASK_LOGGERS = ("celery.worker.strategy", "celery.app.trace")


class QuietLog(logging.Filter):
    """A handler's filter: a sweep's task lines become DEBUG lines (shown only when the log
    level lets DEBUG through), and Django's lines for API client errors are left out while
    requests are logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in CELERY_TASK_LOGGERS and record.levelno == logging.INFO:
            message = record.getMessage()
            if any(f"{task}[" in message for task in SWEEPS):
                # The worker's loggers follow its --loglevel: the setting says what is shown.
                if settings.HERD_LOG_LEVEL != "DEBUG":
                    return False
                record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        if record.name == "django.request" and settings.HERD_LOG_REQUESTS:
            status = getattr(record, "status_code", 500)
            request = getattr(record, "request", None)
            path = getattr(request, "path_info", "")
            if status < 500 and path.startswith(("/v1", "/api")):
                return False
        return True
