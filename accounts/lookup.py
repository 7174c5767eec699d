"""Find the key a request presents, without a database query on every request.

Contract: ``afind_key(secret)`` returns a ``KeyInfo`` or None for a secret no key has. Answers
(found or not) are cached in this process for ``HERD_KEY_CACHE_SECONDS``; so a key revoked, its
limits changed, or its user deactivated, takes effect in every web process within that time.
Expiry is checked on every request against the cached ``expires_at``, so it is exact.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.conf import settings

from accounts.models import ApiKey
from accounts.tokens import hash_secret

# Unknown secrets are cached too, so a client retrying a wrong key cannot make every request
# a query; the cache is cleared when it grows past this, which bounds it either way.
_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class KeyInfo:
    """What the request path needs to know about a key."""

    id: int
    name: str
    prefix: str
    user_id: int
    user_is_staff: bool
    user_is_active: bool
    team_id: int | None
    allowed_models: frozenset[str] | None
    requests_per_minute: int | None
    tokens_per_minute: int | None
    tokens_per_day: int | None
    expires_at: dt.datetime | None
    revoked: bool

    @classmethod
    def of(cls, key: ApiKey) -> KeyInfo:
        return cls(
            id=key.pk,
            name=key.name,
            prefix=key.prefix,
            user_id=key.user_id,
            user_is_staff=bool(getattr(key.user, "is_staff", False)),
            user_is_active=bool(getattr(key.user, "is_active", True)),
            team_id=key.team_id,
            allowed_models=frozenset(key.allowed_models) if key.allowed_models else None,
            requests_per_minute=key.requests_per_minute,
            tokens_per_minute=key.tokens_per_minute,
            tokens_per_day=key.tokens_per_day,
            expires_at=key.expires_at,
            revoked=key.revoked,
        )

    def expired(self, now: dt.datetime) -> bool:
        return self.expires_at is not None and self.expires_at <= now

    def may_manage_models(self, now: dt.datetime) -> bool:
        """Whether the key may manage models now (what ``ApiKeyMiddleware`` lets through to
        ``/api/pull``, ``/api/create``, ``/api/blobs``...)."""
        usable = not self.revoked and self.user_is_active and not self.expired(now)
        return usable and self.user_is_staff

    def allows(self, model: str) -> bool:
        """Whether the key may call ``model`` (normalized ``name:tag``)."""
        return self.allowed_models is None or model in self.allowed_models

    @property
    def limited(self) -> bool:
        return any(
            limit is not None
            for limit in (self.requests_per_minute, self.tokens_per_minute, self.tokens_per_day)
        )


_cache: dict[str, tuple[float, KeyInfo | None]] = {}
# The cache's clock: monotonic seconds. Tests move it on to see an entry expire.
clock: Callable[[], float] = time.monotonic


def _load(secret_hash: str) -> KeyInfo | None:
    key = ApiKey.objects.select_related("user").filter(secret_hash=secret_hash).first()
    return None if key is None else KeyInfo.of(key)


async def afind_key(secret: str) -> KeyInfo | None:
    secret_hash = hash_secret(secret)
    now = clock()
    hit = _cache.get(secret_hash)
    if hit is not None and now - hit[0] < float(settings.HERD_KEY_CACHE_SECONDS):
        return hit[1]
    info = await sync_to_async(_load)(secret_hash)
    if len(_cache) >= _MAX_ENTRIES:
        _cache.clear()
    _cache[secret_hash] = (now, info)
    return info


def why_unusable(key: KeyInfo | None, now: dt.datetime) -> str | None:
    """Why a presented key cannot be used at all (a 401), or None when it can."""
    if key is None:
        return "invalid API key"
    if key.revoked:
        return "this API key has been revoked"
    if not key.user_is_active:
        return "the owner of this API key is deactivated"
    if key.expired(now):
        return "this API key has expired"
    return None


def find_key_now(secret: str) -> KeyInfo | None:
    """Uncached lookup, for the sync DRF authentication of the staff endpoints."""
    return _load(hash_secret(secret))
