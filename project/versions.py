"""Herd's own version, and the version of Ollama's API that ``/api`` answers as."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

# The Ollama release whose API behaviour /api follows, as GET /api/version answers it:
# clients gate features on it (Codex's --oss refuses an Ollama older than 0.13.4). The tests
# keep it beside their copy of Ollama's API document (tests/specs/).
OLLAMA_VERSION = "0.13.4"


def herd_version() -> str:
    try:
        return version("herd")
    except PackageNotFoundError:
        return "0.0.0"
