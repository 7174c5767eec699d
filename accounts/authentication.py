"""DRF authentication by API key, for the staff endpoints outside ``/v1`` and ``/api`` (which
the middleware guards): the same headers, checked against the database on every call."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from accounts.lookup import KeyInfo, find_key_now
from accounts.middleware import presented_secret


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: Request) -> tuple[Any, KeyInfo] | None:
        secret = presented_secret(request._request)
        if secret is None:
            return None
        key = find_key_now(secret)
        if key is None or key.revoked or not key.user_is_active or key.expired(timezone.now()):
            raise AuthenticationFailed("invalid, expired or revoked API key")
        return get_user_model().objects.get(pk=key.user_id), key

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="herd"'
