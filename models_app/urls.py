from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from models_app import api, create_views, ollama_views, views

router = SimpleRouter()
router.register("api/models", api.ModelRecordViewSet)
router.register("api/pulls", api.PullJobViewSet)

urlpatterns = [
    path("", views.root),
    path("api/pull", ollama_views.pull),
    path("api/tags", ollama_views.tags),
    path("api/show", ollama_views.show),
    path("api/copy", ollama_views.copy),
    path("api/delete", ollama_views.delete),
    path("api/create", create_views.create),
    path("api/blobs/<str:digest>", create_views.blob),
    *router.urls,
]
