"""Names of what accounts keeps in Redis (rate-limit windows, metrics), all under
``HERD_NAMESPACE`` like ``workers.broker.keys``."""

from __future__ import annotations

from django.conf import settings


def _ns() -> str:
    return str(settings.HERD_NAMESPACE)


def requests_window(key_id: int, minute: int) -> str:
    """Requests a key made in one clock minute (``minute``: seconds since the epoch // 60)."""
    return f"{_ns()}:rl:{key_id}:rpm:{minute}"


def tokens_minute_window(key_id: int, minute: int) -> str:
    """Tokens (prompt and completion) a key used in one clock minute."""
    return f"{_ns()}:rl:{key_id}:tpm:{minute}"


def tokens_day_window(key_id: int, day: int) -> str:
    """Tokens a key used in one UTC day (``day``: seconds since the epoch // 86400)."""
    return f"{_ns()}:rl:{key_id}:tpd:{day}"


def limit_clock() -> str:
    """The instant a test holds the limiter's clock at (read only with HERD_TEST_CLOCK on)."""
    return f"{_ns()}:test:limit-clock"


def metric(name: str) -> str:
    """A hash holding one metric's values, a field per label set (see accounts.metrics)."""
    return f"{_ns()}:metrics:{name}"
