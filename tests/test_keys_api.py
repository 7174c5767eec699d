"""The staff endpoints for keys (/herd/keys) and the audit log (/herd/audit)."""

from __future__ import annotations

from tests.keyed import KeyedServer, KeyedWeb


def test_staff_create_a_key_and_see_its_secret_once(keyed_server: KeyedServer) -> None:
    reply = keyed_server.call(
        "POST",
        "/herd/keys",
        keyed_server.staff_secret,
        json={"name": "api-made", "allowed_models": ["tiny"], "requests_per_minute": 100},
    )
    assert reply.status_code == 201, reply.text
    created = reply.json()
    secret = created["secret"]
    assert secret.startswith(created["prefix"])
    assert created["allowed_models"] == ["tiny:latest"]
    assert created["user"] == "admin"
    assert keyed_server.complete(secret).status_code == 200
    listed = keyed_server.call("GET", "/herd/keys", keyed_server.staff_secret)
    assert listed.status_code == 200
    (row,) = [k for k in listed.json() if k["name"] == "api-made"]
    assert "secret" not in row and secret not in listed.text
    assert row["state"] == "active"


def test_staff_revoke_a_key_and_it_stops_working(keyed_server: KeyedServer) -> None:
    created = keyed_server.call(
        "POST", "/herd/keys", keyed_server.staff_secret, json={"name": "api-revoked"}
    ).json()
    assert keyed_server.complete(created["secret"]).status_code == 200
    reply = keyed_server.call(
        "POST", f"/herd/keys/{created['id']}/revoke", keyed_server.staff_secret
    )
    assert reply.status_code == 200
    assert reply.json()["state"] == "revoked"
    assert keyed_server.complete(created["secret"]).status_code == 401


def test_key_creation_and_revocation_are_audited(keyed_server: KeyedServer) -> None:
    created = keyed_server.call(
        "POST", "/herd/keys", keyed_server.staff_secret, json={"name": "api-audited"}
    ).json()
    keyed_server.call("POST", f"/herd/keys/{created['id']}/revoke", keyed_server.staff_secret)
    keyed_server.herd("keys", "create", "cli-audited")
    entries = keyed_server.call("GET", "/herd/audit", keyed_server.staff_secret).json()
    mine = {(e["actor"], e["action"], e["target"]) for e in entries}
    assert ("admin", "key_created", "key api-audited") in mine
    assert ("admin", "key_revoked", "key api-audited") in mine
    assert ("cli", "key_created", "key cli-audited") in mine
    revoked = keyed_server.call(
        "GET", "/herd/audit?action=key_revoked", keyed_server.staff_secret
    ).json()
    assert {e["action"] for e in revoked} == {"key_revoked"}


def test_the_staff_endpoints_refuse_others(keyed_web: KeyedWeb) -> None:
    plain = keyed_web.create_key("not-staff-either")
    for method, path in (("GET", "/herd/keys"), ("GET", "/herd/usage"), ("GET", "/herd/audit")):
        assert keyed_web.call(method, path, None).status_code == 401
        assert keyed_web.call(method, path, "herd-wrong").status_code == 401
        assert keyed_web.call(method, path, plain).status_code == 403
    made = keyed_web.call("POST", "/herd/keys", plain, json={"name": "sneaky"})
    assert made.status_code == 403


def test_creating_a_key_with_a_taken_name_is_a_400(keyed_web: KeyedWeb) -> None:
    body = {"name": "api-twice"}
    first = keyed_web.call("POST", "/herd/keys", keyed_web.staff_secret, json=body)
    assert first.status_code == 201
    again = keyed_web.call("POST", "/herd/keys", keyed_web.staff_secret, json=body)
    assert again.status_code == 400
    assert "exists already" in again.text
