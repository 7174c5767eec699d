from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from models_app import api, views

router = SimpleRouter()
router.register("api/models", api.ModelRecordViewSet)
router.register("api/pulls", api.PullJobViewSet)
router.register("api/quantizations", api.QuantizeJobViewSet)

urlpatterns = [
    path("", views.root),
    *router.urls,
]
