"""The token counts of each request, and its usage record.

The counts are those of the request's final event (``workers.broker.wire.Done`` or
``Embeddings``): the view notes them on the request as it relays that event, whatever the API
shows the client (an OpenAI stream carries ``usage`` only when the client asked). A stream whose
client left before the end has them from the request's Redis stream once the worker finishes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from django.db import close_old_connections, transaction
from django.http import HttpRequest

from accounts.models import UsageRecord
from project.broker import async_client
from project.edge.context import exchange_of
from workers.broker import keys
from workers.broker.wire import Done, Embeddings, Usage, decode

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Tokens:
    prompt: int = 0
    completion: int = 0

    @property
    def total(self) -> int:
        return self.prompt + self.completion


def note_usage(request: HttpRequest, usage: Usage) -> None:
    """The view saw the request's final event: its counts are the request's."""
    exchange_of(request).usage = usage


def noted_tokens(request: HttpRequest) -> Tokens | None:
    """The counts ``note_usage`` noted on ``request``, if any."""
    usage = exchange_of(request).usage
    return Tokens(usage.prompt_tokens, usage.completion_tokens) if usage is not None else None


async def tokens_of_request(request_id: str) -> Tokens | None:
    """The counts of the final event in a request's Redis stream, while it is kept: for a
    stream whose client left before the view saw the end."""
    entries: Any = await async_client().xrevrange(keys.request_stream(request_id), count=1)
    if not entries:
        return None
    event = decode(entries[0][1][b"e"])
    if not isinstance(event, Done | Embeddings):
        return None
    return Tokens(event.usage.prompt_tokens, event.usage.completion_tokens)


def do_record_usage(fields: dict[str, Any]) -> None:
    """Write one UsageRecord (runs in a worker thread, after the response has ended)."""
    close_old_connections()
    write_usage_record(fields)


def write_usage_record(fields: dict[str, Any]) -> None:
    """One UsageRecord, in a savepoint of its own: inside a caller's transaction, a record that
    cannot be written is undone alone and the caller's writes stand."""
    try:
        with transaction.atomic():
            UsageRecord.objects.create(**fields)
    except Exception:
        # Usage is bookkeeping: losing one record must never break serving.
        log.exception("could not record usage of %s", fields.get("endpoint"))
