"""Model names: ``name[:tag]`` as Ollama spells them, with ``latest`` as the default tag."""

from __future__ import annotations

import re

from project.errors import ApiError

# Ollama allows path-like names (hf.co/owner/repo:Q4_K_M); each path part is a plain token.
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]*"
_NAME = re.compile(rf"^{_PART}(?:/{_PART})*(?::[A-Za-z0-9][A-Za-z0-9._-]{{0,127}})?$")


class InvalidModelName(ApiError, ValueError):
    """A name that is not ``name[:tag]``: a 400 wherever it is given."""


def normalize_model_name(raw: str) -> str:
    """``"gemma3"`` -> ``"gemma3:latest"``; raises InvalidModelName for anything that is not
    ``name[:tag]`` (empty parts, ``..``, spaces, a second colon)."""
    name = raw.strip()
    if not _NAME.match(name) or ".." in name:
        raise InvalidModelName(f"invalid model name {raw!r}: expected name[:tag]")
    return name if ":" in name else f"{name}:latest"
