"""Key services: the secret kept only as a hash, names normalized, expiry parsed, lookups by
name or prefix."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import User

from accounts.models import ApiKey, AuditEntry
from accounts.services import (
    KeyRequestError,
    check_allowed_models,
    do_create_key,
    do_revoke_key,
    find_key,
    parse_expiry,
)
from accounts.tokens import hash_secret

pytestmark = pytest.mark.django_db


def test_a_key_keeps_only_the_hash_of_its_secret() -> None:
    owner = User.objects.create(username="frank")
    created = do_create_key("hashed", user=owner, actor=owner)
    assert created.secret.startswith("herd-") and len(created.secret) >= 45
    row = ApiKey.objects.filter(pk=created.key.pk).values().get()
    assert row["secret_hash"] == hash_secret(created.secret)
    assert created.secret not in str(row)
    assert row["prefix"] == created.secret[:12]
    entry = AuditEntry.objects.get(action="key_created")
    assert entry.actor == owner and created.secret not in str(entry.details)


def test_two_keys_never_share_a_secret() -> None:
    owner = User.objects.create(username="gail")
    secrets = {do_create_key(f"k{i}", user=owner, actor="cli").secret for i in range(20)}
    assert len(secrets) == 20


def test_allowed_models_are_normalized_and_empty_means_all() -> None:
    assert check_allowed_models(["tiny", "gemma3:270m", " tiny:latest "]) == [
        "gemma3:270m",
        "tiny:latest",
    ]
    assert check_allowed_models([]) is None
    assert check_allowed_models(None) is None
    with pytest.raises(KeyRequestError, match="invalid model name"):
        check_allowed_models(["two words"])


def test_expiry_is_a_day_or_a_moment_in_utc() -> None:
    assert parse_expiry("2030-05-06") == dt.datetime(2030, 5, 6, tzinfo=dt.UTC)
    assert parse_expiry("2030-05-06T07:08:09") == dt.datetime(2030, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    moment = parse_expiry("2030-05-06T07:08:09+02:00")
    assert moment == dt.datetime(2030, 5, 6, 5, 8, 9, tzinfo=dt.UTC)
    with pytest.raises(KeyRequestError):
        parse_expiry("tomorrow")


def test_revoking_twice_audits_once() -> None:
    owner = User.objects.create(username="hank")
    key = do_create_key("twice", user=owner, actor="cli").key
    do_revoke_key(key, "cli")
    do_revoke_key(key, "cli")
    assert AuditEntry.objects.filter(action="key_revoked").count() == 1
    assert key.state == "revoked"


def test_a_key_is_found_by_name_or_unique_prefix() -> None:
    owner = User.objects.create(username="ida")
    created = do_create_key("findable", user=owner, actor="cli")
    assert find_key("findable") == created.key
    assert find_key(created.secret[:10]) == created.key
    with pytest.raises(KeyRequestError, match="no key"):
        find_key("nothing")
