"""``herd keys create|list|revoke``, run as the real command against the keyed server's
database."""

from __future__ import annotations

import pytest

from tests.keyed import KeyedServer

pytestmark = pytest.mark.live


def test_create_prints_the_secret_alone_on_its_last_line(keyed_server: KeyedServer) -> None:
    result = keyed_server.herd("keys", "create", "cli-made")
    lines = result.stdout.strip().splitlines()
    secret = lines[-1]
    assert secret.startswith("herd-") and " " not in secret and len(secret) > 40
    assert secret not in "\n".join(lines[:-1])
    assert keyed_server.call("GET", "/v1/models", secret).status_code == 200


def test_create_stores_team_models_limits_and_expiry(keyed_server: KeyedServer) -> None:
    keyed_server.create_key(
        "cli-full",
        "--team",
        "red",
        "--models",
        "tiny,slow:latest",
        "--rpm",
        "7",
        "--tpm",
        "700",
        "--tpd",
        "7000",
        "--expires",
        "2099-01-02",
        "--user",
        "alice",
    )
    listing = keyed_server.herd("keys", "list").stdout
    (row,) = [line for line in listing.splitlines() if line.startswith("cli-full ")]
    cells = row.split()
    assert cells[2:9] == [
        "alice",
        "red",
        "slow:latest,tiny:latest",
        "7",
        "700",
        "7000",
        "2099-01-02T00:00:00+00:00",
    ]
    assert cells[-1] == "active"


def test_list_never_shows_a_secret(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("cli-listed")
    listing = keyed_server.herd("keys", "list").stdout
    assert secret[:12] in listing  # the display prefix
    assert secret not in listing


def test_revoke_by_prefix_stops_the_key(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("cli-revoked")
    result = keyed_server.herd("keys", "revoke", secret[:12])
    assert "Revoked key cli-revoked" in result.stdout
    listing = keyed_server.herd("keys", "list").stdout
    (row,) = [line for line in listing.splitlines() if line.startswith("cli-revoked ")]
    assert row.split()[-1] == "revoked"


def test_revoke_refuses_an_unknown_or_ambiguous_key(keyed_server: KeyedServer) -> None:
    unknown = keyed_server.herd("keys", "revoke", "no-such-key", check=False)
    assert unknown.returncode != 0
    assert "no key named or prefixed" in unknown.stderr
    keyed_server.create_key("cli-a")
    keyed_server.create_key("cli-b")
    ambiguous = keyed_server.herd("keys", "revoke", "herd-", check=False)
    assert ambiguous.returncode != 0
    assert "several keys" in ambiguous.stderr


def test_create_refuses_bad_input(keyed_server: KeyedServer) -> None:
    keyed_server.create_key("cli-taken")
    taken = keyed_server.herd("keys", "create", "cli-taken", check=False)
    assert taken.returncode != 0 and "exists already" in taken.stderr
    bad_date = keyed_server.herd("keys", "create", "cli-x", "--expires", "soon", check=False)
    assert bad_date.returncode != 0 and "invalid expiry" in bad_date.stderr
    bad_model = keyed_server.herd("keys", "create", "cli-y", "--models", "a b", check=False)
    assert bad_model.returncode != 0 and "invalid model name" in bad_model.stderr
    zero = keyed_server.herd("keys", "create", "cli-z", "--rpm", "0", check=False)
    assert zero.returncode != 0 and "--rpm" in zero.stderr
    assert "cli-x" not in keyed_server.herd("keys", "list").stdout
