"""Keys in the Django admin: the secret shown once after saving, revocation audited, and the
admin closed to anyone but staff."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import ApiKey, AuditEntry
from accounts.tokens import hash_secret

pytestmark = pytest.mark.django_db


def test_adding_a_key_in_the_admin_shows_its_secret_once(admin_client: Client) -> None:
    owner = User.objects.create(username="bob")
    reply = admin_client.post(
        "/admin/accounts/apikey/add/",
        {
            "name": "from-admin",
            "user": owner.pk,
            "allowed_models": '["tiny"]',
            "requests_per_minute": "10",
        },
        follow=True,
    )
    assert reply.status_code == 200
    (message,) = [str(m) for m in get_messages(reply.wsgi_request) if "secret" in str(m)]
    secret = next(word for word in message.split() if word.startswith("herd-"))
    key = ApiKey.objects.get(name="from-admin")
    assert key.secret_hash == hash_secret(secret)
    assert key.prefix == secret[:12]
    assert key.allowed_models == ["tiny:latest"]
    assert secret not in str(ApiKey.objects.filter(pk=key.pk).values().get())
    assert AuditEntry.objects.filter(action="key_created", target="key from-admin").exists()
    # The change page never shows it again.
    page = admin_client.get(f"/admin/accounts/apikey/{key.pk}/change/")
    assert secret not in page.content.decode()


def test_revoking_in_the_admin_is_audited(admin_client: Client) -> None:
    owner = User.objects.create(username="carol")
    admin_client.post(
        "/admin/accounts/apikey/add/", {"name": "to-revoke-in-admin", "user": owner.pk}
    )
    key = ApiKey.objects.get(name="to-revoke-in-admin")
    reply = admin_client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke_keys", "_selected_action": [key.pk]},
        follow=True,
    )
    assert reply.status_code == 200
    key.refresh_from_db()
    assert key.revoked and key.revoked_at is not None
    assert AuditEntry.objects.filter(action="key_revoked", target=f"key {key.name}").count() == 1


def test_usage_and_audit_are_read_only_in_the_admin(admin_client: Client) -> None:
    assert admin_client.get("/admin/accounts/usagerecord/").status_code == 200
    assert admin_client.get("/admin/accounts/auditentry/").status_code == 200
    assert admin_client.get("/admin/accounts/usagerecord/add/").status_code == 403
    assert admin_client.get("/admin/accounts/auditentry/add/").status_code == 403


def test_the_admin_is_for_staff_only() -> None:
    User.objects.create_user(username="dave", password="pw-dave-123")
    client = Client()
    client.login(username="dave", password="pw-dave-123")
    reply = client.get("/admin/accounts/apikey/")
    assert reply.status_code == 302
    assert reply["Location"].startswith("/admin/login/")


def test_admin_forms_need_a_csrf_token() -> None:
    User.objects.create_superuser(username="erin", password="pw-erin-123")
    client = Client(enforce_csrf_checks=True)
    reply = client.post("/admin/login/", {"username": "erin", "password": "pw-erin-123"})
    assert reply.status_code == 403
