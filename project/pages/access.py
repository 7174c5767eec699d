"""Who may see and do what on the pages: signed-in users see everything; staff alone may
change which models the server holds or stop other people's work."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.http.response import HttpResponseBase

View = Callable[..., HttpResponseBase]


def staff_required(view: View) -> View:
    """Sign-in first (a redirect to the login page), then 403 for anyone not staff."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not request.user.is_staff:
            raise PermissionDenied("only staff may do this")
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def is_htmx(request: HttpRequest) -> bool:
    """Whether htmx made the request (and so wants a fragment, not a page)."""
    return request.headers.get("HX-Request") == "true"
