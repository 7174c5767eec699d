"""Where Herd keeps its state on disk (``HERD_HOME``), and the files inside it.

Kept free of Django imports: the settings module and the ``herd`` entry point both read it
before Django is configured.
"""

from __future__ import annotations

import contextlib
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


def private_file(path: Path) -> Path:
    """``path``, created empty and readable by its owner only (mode 600) if it is not there:
    made so from the start, never open to others for a moment. SQLite fills an empty file as
    a new database, and gives its journals the database's mode."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    return path


def local_secret_key(home: Path) -> str:
    """A secret key generated once and kept in ``HERD_HOME`` (local mode only), mode 600."""
    path = home / "secret_key"
    if not path.exists():
        private_file(path).write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()
