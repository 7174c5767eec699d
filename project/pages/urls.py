"""Every page. ``/`` is shared with Ollama's probe (see ``models_app.pages.home``); the rest
live under ``/ui/``, clear of ``/api`` (Ollama's names) and ``/v1`` (OpenAI's)."""

from __future__ import annotations

from django.contrib.auth import views as auth_views
from django.urls import path

from inference_app.pages import batches as batch_pages
from inference_app.pages import playground as playground_pages
from inference_app.pages.workers import workers_page
from models_app import pages as model_pages
from project.pages.static import serve_static
from project.pages.usage import usage_page

urlpatterns = [
    path("", model_pages.home),
    path("ui/models/table", model_pages.model_table),
    path("ui/models/<int:pk>/", model_pages.model_detail),
    path("ui/models/<int:pk>/delete", model_pages.delete_model),
    path("ui/models/variant/", model_pages.create_variant),
    path("ui/pulls/", model_pages.start_pull),
    path("ui/pulls/<int:pk>/", model_pages.pull_progress),
    path("ui/pulls/<int:pk>/cancel", model_pages.cancel_pull),
    path("ui/quantizations/<int:pk>/", model_pages.quantize_progress),
    path("ui/quantizations/<int:pk>/cancel", model_pages.cancel_quantize),
    path("ui/workers/", workers_page),
    path("ui/batches/", batch_pages.batches_page),
    path("ui/batches/<str:batch_id>/", batch_pages.batch_detail),
    path("ui/batches/<str:batch_id>/cancel", batch_pages.cancel_batch),
    path("ui/files/<str:file_id>/download", batch_pages.download_file),
    path("ui/playground/", playground_pages.playground),
    path("ui/usage/", usage_page),
    path(
        "ui/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("ui/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("static/<path:path>", serve_static),
]
