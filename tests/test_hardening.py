"""Hardening: no secret in any log, CORS only for HERD_ORIGINS, the auth default and the refusal
to serve beyond loopback without keys, and the secret key kept in HERD_HOME."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.hosts import (
    ExposedWithoutAuth,
    check_exposure,
    default_auth_mode,
    is_loopback,
)
from tests.keyed import KEYED_ORIGIN, KeyedServer, KeyedWeb
from tests.live import REPO


def herd_setting(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    script = f"from django.conf import settings; print(settings.{name})"
    return subprocess.run(
        [sys.executable, "-m", "project.cli", "shell", "-c", script],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("HERD_")} | env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.live
def test_no_secret_reaches_any_log(keyed_server: KeyedServer) -> None:
    created = keyed_server.herd("keys", "create", "logged", "--rpm", "2")
    secret = created.stdout.strip().splitlines()[-1]
    assert secret not in created.stderr
    keyed_server.hold_limit_clock()  # the three requests below share one minute
    stream_body = {"model": "tiny", "prompt": "hi", "max_tokens": 3, "stream": True}
    for _ in range(3):  # the third is refused (429)
        keyed_server.complete(secret)
    keyed_server.call("POST", "/v1/completions", secret, json=stream_body)
    keyed_server.call("GET", "/api/tags", None, headers={"x-api-key": secret})
    wrong = secret[:-4] + "XXXX"
    assert keyed_server.call("GET", "/v1/models", wrong).status_code == 401
    keyed_server.herd("keys", "revoke", "logged")
    keyed_server.call("GET", "/v1/models", secret)
    logs = [keyed_server.log_path, *keyed_server.home.glob("*.log")]
    text = "".join(path.read_text(errors="replace") for path in logs)
    # The request log did see them, and names the key, never its secret.
    assert "POST /v1/completions 429" in text and "key=logged" in text
    assert "GET /v1/models 401" in text
    assert secret not in text
    assert secret[5:] not in text
    assert wrong not in text


def test_cors_allows_herd_origins_only(keyed_web: KeyedWeb) -> None:
    preflight = {
        "Origin": KEYED_ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    reply = keyed_web.options(
        f"{keyed_web.base_url}/v1/chat/completions", headers=preflight, timeout=10
    )
    assert reply.status_code == 200
    assert reply.headers["Access-Control-Allow-Origin"] == KEYED_ORIGIN
    assert "authorization" in reply.headers["Access-Control-Allow-Headers"]
    # A refusal still carries the header, so the page can read why.
    refused = keyed_web.call("GET", "/v1/models", None, headers={"Origin": KEYED_ORIGIN})
    assert refused.status_code == 401
    assert refused.headers["Access-Control-Allow-Origin"] == KEYED_ORIGIN
    assert "retry-after" in refused.headers["Access-Control-Expose-Headers"]

    elsewhere = {**preflight, "Origin": "https://evil.example"}
    reply = keyed_web.options(
        f"{keyed_web.base_url}/v1/chat/completions", headers=elsewhere, timeout=10
    )
    # Answered, but without the allow headers: a browser refuses the call all the same.
    assert reply.status_code == 200
    assert "Access-Control-Allow-Origin" not in reply.headers
    assert "Access-Control-Allow-Headers" not in reply.headers
    other = keyed_web.call(
        "GET", "/v1/models", keyed_web.staff_secret, headers={"Origin": "https://evil.example"}
    )
    assert other.status_code == 200
    assert "Access-Control-Allow-Origin" not in other.headers


def test_loopback_addresses_are_told_apart_from_others() -> None:
    for address in ("127.0.0.1:11434", "localhost:80", "[::1]:11434", "127.0.0.2:1"):
        assert is_loopback(address), address
        assert default_auth_mode(address) == "off"
    for address in ("0.0.0.0:11434", "192.168.1.5:80", "[::]:11434", "herd.example:80"):
        assert not is_loopback(address), address
        assert default_auth_mode(address) == "required"


def test_serving_beyond_loopback_without_keys_needs_herd_auth_off_explicitly() -> None:
    with pytest.raises(ExposedWithoutAuth, match="HERD_AUTH"):
        check_exposure("0.0.0.0:11434", "off", explicit=False)
    check_exposure("0.0.0.0:11434", "off", explicit=True)
    check_exposure("0.0.0.0:11434", "required", explicit=False)
    check_exposure("127.0.0.1:11434", "off", explicit=False)


@pytest.mark.live  # a herd command in a subprocess
def test_keys_are_required_by_default_beyond_loopback(tmp_path: Path) -> None:
    base = {"HERD_HOME": str(tmp_path)}
    exposed = herd_setting("HERD_AUTH", {**base, "HERD_HOST": "0.0.0.0:11434"})
    assert exposed.stdout.strip().splitlines()[-1] == "required"
    local = herd_setting("HERD_AUTH", {**base, "HERD_HOST": "127.0.0.1:11434"})
    assert local.stdout.strip().splitlines()[-1] == "off"
    chosen = herd_setting("HERD_AUTH", {**base, "HERD_HOST": "0.0.0.0:1", "HERD_AUTH": "off"})
    assert chosen.stdout.strip().splitlines()[-1] == "off"
    bad = herd_setting("HERD_AUTH", {**base, "HERD_AUTH": "maybe"})
    assert bad.returncode != 0
    assert "HERD_AUTH" in bad.stderr


@pytest.mark.live  # a herd command in a subprocess
def test_the_secret_key_is_generated_once_in_herd_home(tmp_path: Path) -> None:
    env = {"HERD_HOME": str(tmp_path)}
    first = herd_setting("SECRET_KEY", env).stdout.strip().splitlines()[-1]
    second = herd_setting("SECRET_KEY", env).stdout.strip().splitlines()[-1]
    assert first == second and len(first) >= 50
    kept = tmp_path / "secret_key"
    assert kept.read_text().strip() == first
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    other_home = herd_setting("SECRET_KEY", {"HERD_HOME": str(tmp_path / "other")})
    assert other_home.stdout.strip().splitlines()[-1] != first


@pytest.mark.live  # a herd command in a subprocess
def test_the_secret_key_comes_from_the_environment_when_set(tmp_path: Path) -> None:
    env = {"HERD_HOME": str(tmp_path), "SECRET_KEY": "from-the-environment-" + "x" * 40}
    assert herd_setting("SECRET_KEY", env).stdout.strip().splitlines()[-1] == env["SECRET_KEY"]
    assert not (tmp_path / "secret_key").exists()
