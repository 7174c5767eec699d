from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

app = Celery("project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Each installed app's tasks module, and the batch app's (a package of inference_app): its
# tasks run in worker processes, which find them here since the worker imports no web code.
# The worker's own tasks (workers.worker.tasks) are imported by the worker command.
app.autodiscover_tasks()
app.autodiscover_tasks(["inference_app.batches"])
