from __future__ import annotations

import os
import sys

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
# The event loop hands each request to a thread (sync_to_async) and takes it back: with
# Python's default 5 ms switch interval either side can wait that long for its turn.
sys.setswitchinterval(0.0005)
application = get_asgi_application()
