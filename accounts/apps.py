from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Keys and usage"

    def ready(self) -> None:
        from accounts import schema  # noqa: F401
