from __future__ import annotations

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularJSONAPIView

from project.edge import fallback

urlpatterns = [
    path("admin/", admin.site.urls),
    # First: it answers "/" (the catalog for browsers, Ollama's probe for everything else).
    path("", include("project.pages.urls")),
    path("", include("inference_app.urls")),
    path("", include("inference_app.status.urls")),
    path("", include("models_app.urls")),
    path("", include("accounts.urls")),
    # Not under /api, whose names are Ollama's.
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
    # Last: whatever no API view answers gets a 404 in its API's shape, not a page.
    re_path(r"^(?:v1|api)(?:/(?P<rest>.*))?$", fallback.unrouted),
]

handler400 = fallback.bad_request
handler404 = fallback.page_not_found
handler500 = fallback.server_error
