"""Where Herd keeps its state on disk (``HERD_HOME``), and the files inside it.

Kept free of Django imports: the settings module and the ``herd`` entry point both read it
before Django is configured.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def herd_home() -> Path:
    """The state directory: ``HERD_HOME``, or ``~/.herd``. Created on first use."""
    home = Path(os.environ.get("HERD_HOME") or Path.home() / ".herd").expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


def embedded_broker_url_file(home: Path) -> Path:
    """`herd serve` writes the embedded Valkey's URL here, so stand-alone processes find it."""
    return home / "run" / "valkey.url"


def local_secret_key(home: Path) -> str:
    """A secret key generated once and kept in ``HERD_HOME`` (local mode only)."""
    path = home / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()
