"""Who is asking, told explicitly: the typed context of one API request.

``accounts.middleware`` builds a ``RequestContext`` once per API request (the key, when keys
are on) and ``attach``es it; the endpoint decorators (``project.edge.endpoint.context_view``)
hand it to the view as an argument, and the view passes it on to dispatch, model lists and
the audit log. Nothing reads identity from a global: no ContextVar, no ad-hoc attribute.

Django gives a middleware no other way than the request to pass something to the view, so
one object rides on it, under one name, behind the two accessors below (``exchange_of`` and
``request_context``): the context (frozen) and the little the edge learns as the request
goes (its parsed JSON body, the token counts of its final event).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from accounts.lookup import KeyInfo
from project.errors import ApiError
from workers.broker.wire import Usage

# The client's own X-Request-Id is used when it looks like one.
_CLIENT_REQUEST_ID = re.compile(r"^[A-Za-z0-9_.-]{8,64}$")

# The request attribute the exchange rides under; read and written only in this module.
_ATTRIBUTE = "herd_exchange"


def key_request_id(key_id: str | None, request_id: str) -> str:
    """``request_id`` in the namespace of key ``key_id`` (none with authentication off):
    ``k<key id>-`` before it, unless it has that already. A request's event stream, its place
    in the queue and its answer are found by this id alone, so two keys that send the same
    ``X-Request-Id`` have two requests, and an id one key has seen (in a response id, say)
    names nothing of another's."""
    if key_id is None:
        return request_id
    prefix = f"k{key_id}-"
    return request_id if request_id.startswith(prefix) else prefix + request_id


@dataclass(frozen=True, slots=True)
class RequestContext:
    """Who asks: the API key (None with authentication off), and through it the user, the
    team and the fair-share sharer."""

    key: KeyInfo | None = None

    @property
    def sharer(self) -> str | None:
        """Whose turn a request takes in the lanes (``workers.broker.fairness``): the key's
        id; None (arrival order) without a key."""
        return str(self.key.id) if self.key is not None else None

    @property
    def user_id(self) -> int | None:
        return self.key.user_id if self.key is not None else None

    @property
    def team_id(self) -> int | None:
        return self.key.team_id if self.key is not None else None

    def may_use(self, model: str) -> bool:
        """Whether the key may use ``model`` (normalized): model lists show a key only the
        models it may call."""
        return self.key is None or self.key.allows(model)

    def namespaced(self, request_id: str) -> str:
        """``request_id`` in this key's namespace (``key_request_id``)."""
        return key_request_id(self.sharer, request_id)

    def new_request_id(self, asked: str | None = None) -> str:
        """The client's own ``X-Request-Id`` when it is well formed (so it can ask where its
        request stands before any answer arrives), else a fresh one; in the key's
        namespace."""
        chosen = asked if asked and _CLIENT_REQUEST_ID.match(asked) else uuid.uuid4().hex
        return self.namespaced(chosen)


ANONYMOUS = RequestContext()


@dataclass(slots=True)
class Exchange:
    """What the edge holds for one request between the middleware and the view: the context
    (set once, by the key middleware), the JSON body parsed once (or why it could not be),
    and the usage of the request's final event, which the view notes as it relays it and the
    middleware counts after the response."""

    context: RequestContext = ANONYMOUS
    body: dict[str, Any] | ApiError | None = None
    usage: Usage | None = None


def exchange_of(request: HttpRequest) -> Exchange:
    """The request's exchange, made on first use."""
    found = request.__dict__.get(_ATTRIBUTE)
    if isinstance(found, Exchange):
        return found
    made = Exchange()
    request.__dict__[_ATTRIBUTE] = made
    return made


def attach(request: HttpRequest, context: RequestContext) -> None:
    """The key middleware's one write: who asks."""
    exchange_of(request).context = context


def request_context(request: HttpRequest) -> RequestContext:
    """Who asks (``ANONYMOUS`` for a request the key middleware did not see: a page)."""
    return exchange_of(request).context
