from __future__ import annotations

from django.urls import path

from accounts import views

urlpatterns = [
    path("herd/keys", views.KeyListView.as_view()),
    path("herd/keys/<int:pk>/revoke", views.KeyRevokeView.as_view()),
    path("herd/usage", views.UsageView.as_view()),
    path("herd/audit", views.AuditListView.as_view()),
    path("metrics", views.metrics_view),
]
