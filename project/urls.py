from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView

urlpatterns = [
    path("admin/", admin.site.urls),
    # First: it answers "/" (the catalog for browsers, Ollama's probe for everything else).
    path("", include("project.pages.urls")),
    path("", include("inference_app.urls")),
    path("", include("workers.urls")),
    path("", include("models_app.urls")),
    path("", include("accounts.urls")),
    # Not under /api, whose names are Ollama's.
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi-schema"),
]
