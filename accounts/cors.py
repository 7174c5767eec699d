"""CORS for the APIs: browsers on the origins in ``HERD_ORIGINS`` may call them.

Runs before the key check, so a preflight (which carries no key) is answered here and refusals
still carry the CORS headers a browser needs to read them. Nothing is sent for other origins,
which leaves them to the browser's same-origin policy. Credentials (cookies) are never allowed:
API calls authenticate with a key in a header.

Not django-cors-headers: it answers every preflight with 200, an origin it does not allow
included (without the headers), where this answers 204, and 403 to an origin it does not
allow, which browsers and the tests see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.utils.cache import patch_vary_headers

from accounts.middleware import area_of

# Anthropic's clients send their API version and beta features on every request, and its
# browser client says it calls from a browser on purpose.
ALLOWED_HEADERS = (
    "authorization, x-api-key, content-type, openai-organization, openai-project, "
    "anthropic-version, anthropic-beta, anthropic-dangerous-direct-browser-access"
)
ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
EXPOSED_HEADERS = (
    "x-request-id, retry-after, x-ratelimit-limit-requests, x-ratelimit-remaining-requests, "
    "x-ratelimit-reset-requests, x-ratelimit-limit-tokens, x-ratelimit-remaining-tokens, "
    "x-ratelimit-reset-tokens"
)


def allowed_origin(origin: str) -> str | None:
    origins: list[str] = settings.HERD_ORIGINS
    if "*" in origins:
        return "*"
    return origin if origin in origins else None


class CorsMiddleware:
    async_capable = True
    sync_capable = False

    def __init__(self, get_response: Callable[[HttpRequest], Awaitable[HttpResponseBase]]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(self.get_response):
            markcoroutinefunction(self)

    async def __call__(self, request: HttpRequest) -> HttpResponseBase:
        origin = request.headers.get("Origin")
        if not origin or area_of(request.path_info) is None:
            return await self.get_response(request)
        allowed = allowed_origin(origin)
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if preflight:
            response: HttpResponseBase = HttpResponse(status=204 if allowed else 403)
            if allowed:
                response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
                response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
                response["Access-Control-Max-Age"] = "600"
        else:
            response = await self.get_response(request)
        if allowed:
            response["Access-Control-Allow-Origin"] = allowed
            response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        patch_vary_headers(response, ("Origin",))
        return response
