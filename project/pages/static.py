"""Static files for ``herd serve``.

The pages need a handful of small files (htmx, a stylesheet, the playground's script, the
admin's own). They are served here, through Django's staticfiles finders, rather than with
WhiteNoise: its middleware is synchronous, and in the ASGI stack it would put every streamed
API response through a sync/async bridge. Behind a proxy that serves ``collectstatic``'s
output, this view is simply never reached.
"""

from __future__ import annotations

import hashlib
import mimetypes
import posixpath

from django.contrib.staticfiles import finders
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

# The files are small and change only with a release: a day of caching, then a cheap 304.
MAX_AGE = 86400


@require_safe
def serve_static(request: HttpRequest, path: str) -> HttpResponse:
    normalized = posixpath.normpath(path).lstrip("/")
    if normalized.startswith("..") or normalized != path.lstrip("/"):
        raise Http404("no such file")
    found = finders.find(normalized)
    if not found or isinstance(found, list):
        raise Http404("no such file")
    with open(found, "rb") as handle:
        content = handle.read()
    etag = f'"{hashlib.sha256(content).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={MAX_AGE}"}
    if request.headers.get("If-None-Match") == etag:
        return HttpResponse(status=304, headers=headers)
    content_type, encoding = mimetypes.guess_type(normalized)
    response = HttpResponse(
        content, content_type=content_type or "application/octet-stream", headers=headers
    )
    if encoding:
        response["Content-Encoding"] = encoding
    return response
