"""Django's own middleware, passed by on the APIs.

Each of Django's middleware classes runs its hooks through ``sync_to_async`` under ASGI: a
thread hop apiece, a dozen per request, all on the path to the first token. The APIs
(``/v1``, ``/api``, ``/metrics``) use none of what they provide (sessions, CSRF, the session
user, messages, clickjacking and HTTPS headers for pages), so on those paths these subclasses
hand the request straight on; everywhere else they are the middleware they extend.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.common import CommonMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.middleware.security import SecurityMiddleware

from accounts.middleware import area_of


class PassedOnApis:
    """Mixed in before one of Django's ``MiddlewareMixin`` classes."""

    get_response: Any

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        if area_of(request.path_info) is not None:
            response: HttpResponseBase = await self.get_response(request)
            return response
        return await super().__acall__(request)  # type: ignore[misc]


class ApiSecurityMiddleware(PassedOnApis, SecurityMiddleware):
    pass


class ApiSessionMiddleware(PassedOnApis, SessionMiddleware):
    pass


class ApiCommonMiddleware(PassedOnApis, CommonMiddleware):
    pass


class ApiCsrfViewMiddleware(PassedOnApis, CsrfViewMiddleware):
    async def process_view(  # type: ignore[override]
        self, request: HttpRequest, callback: Any, callback_args: Any, callback_kwargs: Any
    ) -> HttpResponseBase | None:
        # Django calls a coroutine process_view as it is: no thread hop on the APIs.
        if area_of(request.path_info) is not None:
            return None
        check = sync_to_async(super().process_view, thread_sensitive=True)
        return await check(request, callback, callback_args, callback_kwargs)


class ApiAuthenticationMiddleware(PassedOnApis, AuthenticationMiddleware):
    pass


class ApiMessageMiddleware(PassedOnApis, MessageMiddleware):
    pass


class ApiXFrameOptionsMiddleware(PassedOnApis, XFrameOptionsMiddleware):
    pass
