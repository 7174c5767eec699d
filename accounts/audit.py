"""The audit log of administrative actions.

``record(actor, action, target, details)`` is the one way to write it: key creation and
revocation call it here; pulls, deletions and placement changes call it from their own apps.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser, User
from django.http import HttpRequest

from accounts.models import AuditAction, AuditEntry
from project.edge.context import RequestContext
from project.json_types import JsonMapping

Actor = User | AnonymousUser | str | None


def record(
    actor: Actor, action: AuditAction | str, target: str, details: JsonMapping | None = None
) -> AuditEntry:
    """Write one entry. ``actor`` is a user, or a name (``"cli"``) when no user acted."""
    if isinstance(actor, User):
        user: User | None = actor
        name = actor.get_username()
    else:
        user = None
        name = actor if isinstance(actor, str) else "anonymous"
    return AuditEntry.objects.create(
        actor=user,
        actor_name=name,
        action=AuditAction(action),
        target=target,
        details=details or {},
    )


def api_actor(ctx: RequestContext, request: HttpRequest) -> Actor:
    """Who made an API call: the user of its key, or (keys off) ``api`` and the address."""
    key = ctx.key
    if key is not None:
        user = User.objects.filter(pk=key.user_id).first()
        if user is not None:
            return user
    return f"api ({request.META.get('REMOTE_ADDR', '?')})"
