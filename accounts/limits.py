"""Per-key limits: requests per minute, tokens per minute, tokens per day, held in Redis so
that every web process counts against the same windows.

Windows are fixed clock windows (the current UTC minute or day): a counter per key and window,
expiring after it. Requests are counted when they arrive (a refused request counts too, so a
client hammering a full window does not get in sooner). Tokens are known only after the model
has answered, so they are counted then (``queue_tokens``) and a request is refused when the
window is already used up: one long answer may overshoot a token limit, the next request waits.

``LimitCheck`` puts its commands on a pipeline the caller executes, so that the whole check
costs the request one Redis round trip together with whatever else the caller queues.

The windows follow ``limits_now()``: the wall clock, unless ``HERD_TEST_CLOCK`` is on (tests
only), when a test may hold it at an instant of its choosing in Redis (``rkeys.limit_clock``),
for every web process of the server at once, instead of waiting for a minute to turn over.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from accounts import rkeys
from accounts.lookup import KeyInfo
from project.broker import async_client

MINUTE = 60
DAY = 86_400


async def limits_now() -> float:
    """Seconds since the epoch, as the limit windows count them: the wall clock, or with
    ``HERD_TEST_CLOCK`` on, the instant a test holds in Redis while it holds one."""
    if not settings.HERD_TEST_CLOCK:
        return time.time()
    held = await async_client().get(rkeys.limit_clock())
    return time.time() if held is None else float(held)


@dataclass
class Decision:
    """``reason`` names the exhausted limit (``requests``, ``tokens``) when not ``allowed``."""

    allowed: bool
    reason: str = ""
    message: str = ""
    retry_after: int = 0
    headers: dict[str, str] = field(default_factory=dict)


def _reset(seconds: float) -> str:
    # OpenAI's format: "1s", "6m0s".
    whole = max(1, int(seconds + 0.999))
    return f"{whole}s" if whole < 60 else f"{whole // 60}m{whole % 60}s"


class LimitCheck:
    """The limit check of one request by ``key`` at ``now`` (seconds since the epoch)."""

    def __init__(self, key: KeyInfo, now: float) -> None:
        self.key = key
        self.now = now
        self.minute = int(now // MINUTE)
        self.day = int(now // DAY)
        self._queued: list[str] = []

    def queue(self, pipe: Any) -> int:
        """Queue the check's commands on ``pipe``; returns how many results they take."""
        key = self.key
        if key.requests_per_minute is not None:
            name = rkeys.requests_window(key.id, self.minute)
            pipe.incr(name)
            pipe.expire(name, 2 * MINUTE)
            self._queued += ["rpm", ""]
        if key.tokens_per_minute is not None:
            pipe.get(rkeys.tokens_minute_window(key.id, self.minute))
            self._queued.append("tpm")
        if key.tokens_per_day is not None:
            pipe.get(rkeys.tokens_day_window(key.id, self.day))
            self._queued.append("tpd")
        return len(self._queued)

    def decide(self, results: list[Any]) -> Decision:
        used = {
            name: int(value or 0) for name, value in zip(self._queued, results, strict=True) if name
        }
        key = self.key
        minute_left = MINUTE - self.now % MINUTE
        day_left = DAY - self.now % DAY
        headers: dict[str, str] = {}
        refusals: list[tuple[str, str, float]] = []
        if key.requests_per_minute is not None:
            limit = key.requests_per_minute
            headers["x-ratelimit-limit-requests"] = str(limit)
            headers["x-ratelimit-remaining-requests"] = str(max(0, limit - used["rpm"]))
            headers["x-ratelimit-reset-requests"] = _reset(minute_left)
            if used["rpm"] > limit:
                refusals.append(
                    ("requests", f"rate limit reached: {limit} requests per minute", minute_left)
                )
        # The token headers describe the per-minute window when the key has one, else the day.
        if key.tokens_per_day is not None:
            limit = key.tokens_per_day
            headers["x-ratelimit-limit-tokens"] = str(limit)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, limit - used["tpd"]))
            headers["x-ratelimit-reset-tokens"] = _reset(day_left)
            if used["tpd"] >= limit:
                refusals.append(("tokens", f"rate limit reached: {limit} tokens per day", day_left))
        if key.tokens_per_minute is not None:
            limit = key.tokens_per_minute
            headers["x-ratelimit-limit-tokens"] = str(limit)
            headers["x-ratelimit-remaining-tokens"] = str(max(0, limit - used["tpm"]))
            headers["x-ratelimit-reset-tokens"] = _reset(minute_left)
            if used["tpm"] >= limit:
                refusals.append(
                    ("tokens", f"rate limit reached: {limit} tokens per minute", minute_left)
                )
        if not refusals:
            return Decision(True, headers=headers)
        # The client may retry once every exhausted window has turned over.
        reason, message, _ = refusals[0]
        wait = max(seconds for _, _, seconds in refusals)
        retry_after = max(1, int(wait + 0.999))
        headers["Retry-After"] = str(retry_after)
        return Decision(False, reason, message, retry_after, headers)


def queue_tokens(pipe: Any, key_id: int, tokens: int, now: float) -> None:
    """Queue the commands that count ``tokens`` against both token windows of a key."""
    minute_name = rkeys.tokens_minute_window(key_id, int(now // MINUTE))
    day_name = rkeys.tokens_day_window(key_id, int(now // DAY))
    pipe.incrby(minute_name, tokens)
    pipe.expire(minute_name, 2 * MINUTE)
    pipe.incrby(day_name, tokens)
    pipe.expire(day_name, 2 * DAY)
