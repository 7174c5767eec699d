"""A web process caches what it found about a key for ``HERD_KEY_CACHE_SECONDS``: a change to
the key takes effect once that entry expires, found or not (``accounts.lookup``). The cache's
clock is moved on here instead of slept out."""

from __future__ import annotations

from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.contrib.auth.models import User

from accounts import lookup
from accounts.services import do_create_key, do_revoke_key

pytestmark = pytest.mark.django_db

CACHE_SECONDS = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, settings: Any) -> Clock:
    settings.HERD_KEY_CACHE_SECONDS = CACHE_SECONDS
    moved = Clock()
    monkeypatch.setattr(lookup, "clock", moved)
    monkeypatch.setattr(lookup, "_cache", {})  # an empty cache of its own
    return moved


def find(secret: str) -> lookup.KeyInfo | None:
    return async_to_sync(lookup.afind_key)(secret)


def test_a_revoked_key_is_refused_once_its_cache_entry_expires(clock: Clock) -> None:
    owner = User.objects.create(username="cached")
    created = do_create_key("cached", user=owner, actor=owner)
    found = find(created.secret)
    assert found is not None and not found.revoked
    do_revoke_key(created.key, actor=owner)

    clock.now += CACHE_SECONDS - 0.1
    cached = find(created.secret)
    assert cached is not None and not cached.revoked  # the answer from before the revocation
    clock.now += 0.2
    fresh = find(created.secret)
    assert fresh is not None and fresh.revoked


def test_a_deactivated_owner_shows_once_the_cache_entry_expires(clock: Clock) -> None:
    owner = User.objects.create(username="leaving")
    created = do_create_key("leaving", user=owner, actor=owner)
    found = find(created.secret)
    assert found is not None and found.user_is_active
    User.objects.filter(pk=owner.pk).update(is_active=False)

    clock.now += CACHE_SECONDS - 0.1
    cached = find(created.secret)
    assert cached is not None and cached.user_is_active
    clock.now += 0.2
    fresh = find(created.secret)
    assert fresh is not None and not fresh.user_is_active


def test_an_unknown_secret_is_cached_too(clock: Clock) -> None:
    assert find("herd-nobody-has-this-one") is None
    with pytest.MonkeyPatch.context() as patch:
        # Within the entry's time the database is not asked again.
        patch.setattr(lookup, "_load", lambda _hash: pytest.fail("looked up again"))
        clock.now += CACHE_SECONDS - 0.1
        assert find("herd-nobody-has-this-one") is None
