from __future__ import annotations

from django.urls import path

from inference_app.status import views

urlpatterns = [
    path("api/status", views.ollama_status),
    path("v1/status", views.openai_status),
]
