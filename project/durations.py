"""Durations as Ollama spells ``keep_alive``: a number of seconds, or a Go duration string
(``"5m"``, ``"1h30m"``, ``"300ms"``, ``"-1m"``), with days too (``"1d"``: a batch's
``completion_window``). For a ``keep_alive``, negative means forever."""

from __future__ import annotations

import re

_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h|d)")
_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
}


def parse_duration(value: object) -> float:
    """Seconds in ``value``; raises ValueError for anything else (``"5 minutes"``, ``True``)."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    if isinstance(value, int | float):
        return float(value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a duration is a number of seconds or a string like '5m'")
    text = value.strip()
    try:
        return float(text)
    except ValueError:
        pass
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    total, end = 0.0, 0
    for match in _PART.finditer(body):
        if match.start() != end:
            break
        total += float(match.group(1)) * _SECONDS[match.group(2)]
        end = match.end()
    if end != len(body) or not body:
        raise ValueError(f"invalid duration {value!r}: expected e.g. '5m', '1h30m' or seconds")
    return sign * total
