from __future__ import annotations

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# The event loop hands each request to a thread (sync_to_async) and takes it back: with
# Python's default 5 ms switch interval either side can wait that long for its turn.
sys.setswitchinterval(0.0005)
django.setup(set_prefix=False)

# Django's own handler, except that blob uploads stream to disk before it reads a body; in
# front of it, what is decided before any body is read (keys, size, host, origin).
from models_app.blob_receiver import HerdASGIHandler  # noqa: E402
from project.edge.gate import EdgeGate  # noqa: E402

application = EdgeGate(HerdASGIHandler())
