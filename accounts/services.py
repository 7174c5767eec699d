"""Key services: ``check_*`` validate, ``do_*`` write (and audit)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts import audit
from accounts.models import ApiKey, AuditAction, Team
from accounts.tokens import display_prefix, hash_secret, new_secret
from models_app.names import InvalidModelName, normalize_model_name


class KeyRequestError(ValueError):
    """A key request that cannot be honoured; the message says why."""


@dataclass(frozen=True)
class NewKey:
    """A key just made, with its secret: the only time the secret exists outside the client."""

    key: ApiKey
    secret: str


def check_allowed_models(names: Iterable[str] | None) -> list[str] | None:
    """Normalized ``name:tag`` list, or None (every model) for None or an empty list."""
    if names is None:
        return None
    cleaned = [n.strip() for n in names if n.strip()]
    if not cleaned:
        return None
    try:
        return sorted({normalize_model_name(n) for n in cleaned})
    except InvalidModelName as exc:
        raise KeyRequestError(str(exc)) from None


def parse_expiry(value: str) -> dt.datetime:
    """An ISO date (the key expires at the start of that day, UTC) or an ISO date-time."""
    try:
        if len(value) == 10:
            day = dt.date.fromisoformat(value)
            return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise KeyRequestError(
            f"invalid expiry {value!r}: expected YYYY-MM-DD or an ISO date-time"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def issue_secret(key: ApiKey) -> str:
    """Give an unsaved key a fresh secret; returns the secret (store only its hash)."""
    secret = new_secret()
    key.secret_hash = hash_secret(secret)
    key.prefix = display_prefix(secret)
    return secret


def do_create_key(
    name: str,
    *,
    user: User,
    actor: audit.Actor,
    team: Team | None = None,
    allowed_models: Iterable[str] | None = None,
    requests_per_minute: int | None = None,
    tokens_per_minute: int | None = None,
    tokens_per_day: int | None = None,
    expires_at: dt.datetime | None = None,
) -> NewKey:
    """Create a key and audit it. Raises KeyRequestError for a taken name or a bad model name."""
    if ApiKey.objects.filter(name=name).exists():
        raise KeyRequestError(f"a key named {name!r} exists already")
    key = ApiKey(
        name=name,
        user=user,
        team=team,
        allowed_models=check_allowed_models(allowed_models),
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        tokens_per_day=tokens_per_day,
        expires_at=expires_at,
    )
    secret = issue_secret(key)
    with transaction.atomic():
        key.save()
        do_audit_key_created(key, actor)
    return NewKey(key, secret)


def do_audit_key_created(key: ApiKey, actor: audit.Actor) -> None:
    audit.record(
        actor,
        AuditAction.KEY_CREATED,
        f"key {key.name}",
        {"prefix": key.prefix, "user": key.user.get_username(), "team": str(key.team or "")},
    )


def do_revoke_key(key: ApiKey, actor: audit.Actor) -> None:
    """Revoke ``key`` (no-op when it is revoked already) and audit it. Web processes notice
    within ``HERD_KEY_CACHE_SECONDS``."""
    if key.revoked:
        return
    with transaction.atomic():
        key.revoked = True
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked", "revoked_at"])
        audit.record(actor, AuditAction.KEY_REVOKED, f"key {key.name}", {"prefix": key.prefix})


def find_key(name_or_prefix: str) -> ApiKey:
    """The one key with this name, or whose display prefix starts with the text given.
    Raises KeyRequestError when none or several match."""
    exact = ApiKey.objects.filter(name=name_or_prefix).first()
    if exact is not None:
        return exact
    matches = list(ApiKey.objects.filter(Q(prefix__startswith=name_or_prefix))[:2])
    if not matches:
        raise KeyRequestError(f"no key named or prefixed {name_or_prefix!r}")
    if len(matches) > 1:
        raise KeyRequestError(f"several keys start with {name_or_prefix!r}; give more of it")
    return matches[0]


def get_or_create_user(username: str) -> User:
    user, _ = User.objects.get_or_create(username=username)
    return user


def get_or_create_team(name: str) -> Team:
    team, _ = Team.objects.get_or_create(name=name)
    return team
