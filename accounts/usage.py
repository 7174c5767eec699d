"""Token counts read from finished responses, and the usage record of each request.

The middleware sees responses, not worker events, so it reads the counts the API reports:
OpenAI's ``usage`` (``prompt_tokens``, ``completion_tokens``), Ollama's ``prompt_eval_count`` and
``eval_count``. An OpenAI stream carries ``usage`` only when the client asked
(``stream_options.include_usage``); otherwise the counts come from the request's ``done`` event,
still in its Redis stream (``X-Request-Id`` names it).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections

from accounts.models import UsageRecord
from accounts.redis_client import async_client
from workers import keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tokens:
    prompt: int = 0
    completion: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def tokens_of(obj: Any) -> Tokens | None:
    """The counts in one response object (OpenAI or Ollama), or None when it has none."""
    if not isinstance(obj, dict):
        return None
    usage = obj.get("usage")
    if isinstance(usage, dict) and "prompt_tokens" in usage:
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
        return Tokens(int(prompt or 0), int(completion or 0))
    if obj.get("done") is True and ("prompt_eval_count" in obj or "eval_count" in obj):
        return Tokens(int(obj.get("prompt_eval_count") or 0), int(obj.get("eval_count") or 0))
    return None


def tokens_of_json(body: bytes) -> Tokens | None:
    try:
        return tokens_of(json.loads(body))
    except (ValueError, UnicodeDecodeError):
        return None


def tokens_of_stream_tail(tail: bytes) -> Tokens | None:
    """The counts in the last chunks of an SSE or NDJSON stream: the last object carrying them."""
    found = None
    for line in tail.splitlines():
        line = line.strip()
        if line.startswith(b"data:"):
            line = line[5:].strip()
        if not line.startswith(b"{"):
            continue
        counts = tokens_of_json(line)
        if counts is not None:
            found = counts
    return found


async def tokens_of_request(request_id: str) -> Tokens | None:
    """The counts in the final event of a request's Redis stream, while it is kept."""
    entries: Any = await async_client().xrevrange(keys.request_stream(request_id), count=1)
    if not entries:
        return None
    event = json.loads(entries[0][1][b"e"])
    usage = event.get("usage")
    if not isinstance(usage, dict):
        return None
    return Tokens(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def do_record_usage(fields: dict[str, Any]) -> None:
    """Write one UsageRecord (runs in a worker thread, after the response has ended)."""
    close_old_connections()
    try:
        UsageRecord.objects.create(**fields)
    except Exception:
        # Usage is bookkeeping: losing one record must never break serving.
        log.exception("could not record usage of %s", fields.get("endpoint"))
