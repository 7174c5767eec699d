"""Model aliases: a record answers to other names (set by ``/api/create``'s ``aliases``, a
Modelfile's ``ALIAS`` lines or the admin), so that the Anthropic names Claude Code asks for
reach a local model; a name no record has nor answers to stays a 404 in each API's shape."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from django.core.exceptions import ValidationError

from models_app.models import ModelRecord
from tests.http_methods import RequestMethods
from tests.inprocess import InProcessServer
from tests.live import LiveServer

SONNET = "claude-sonnet-4-5-20250929"
HAIKU = "claude-haiku-4-5"


def create(server: LiveServer, **body: object) -> httpx.Response:
    return httpx.post(f"{server.base_url}/api/create", json={"stream": False, **body}, timeout=60)


def messages(server: RequestMethods, model: str) -> httpx.Response:
    return server.post(
        f"{server.base_url}/v1/messages",
        json={"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]},
        timeout=60,
    )


def test_an_alias_set_by_api_create_reaches_the_model(server: LiveServer) -> None:
    made = create(server, model="coder-a", **{"from": "tiny"}, aliases=[SONNET, HAIKU])
    assert made.status_code == 200, made.text
    try:
        reply = messages(server, SONNET)
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"] == SONNET  # answered under the name asked for
        chat = httpx.post(
            f"{server.base_url}/v1/chat/completions",
            json={
                "model": HAIKU,
                "max_tokens": 2,
                "messages": [{"role": "user", "content": "hi"}],
            },
            timeout=60,
        )
        assert chat.status_code == 200, chat.text

        # One name, one model: another record cannot take it, nor can the record's own name.
        taken = create(server, model="coder-b", **{"from": "tiny"}, aliases=[HAIKU])
        assert taken.status_code == 400
        assert "already an alias of 'coder-a:latest'" in taken.json()["error"]
        own = create(server, model="coder-b", **{"from": "tiny"}, aliases=["coder-b"])
        assert own.status_code == 400 and "own name" in own.json()["error"]
    finally:
        httpx.request("DELETE", f"{server.base_url}/api/delete", json={"model": "coder-a"})
    assert messages(server, SONNET).status_code == 404


def test_an_unknown_claude_name_is_a_404_in_anthropics_shape(web: InProcessServer) -> None:
    reply = messages(web, "claude-opus-9-unknown")
    assert reply.status_code == 404
    body = reply.json()
    assert body["type"] == "error" and body["error"]["type"] == "not_found_error"
    assert "claude-opus-9-unknown" in body["error"]["message"]


def test_a_modelfiles_alias_lines_name_the_model(server: LiveServer, tmp_path: Path) -> None:
    modelfile = tmp_path / "Modelfile"
    modelfile.write_text(f"FROM tiny\nALIAS {SONNET}\nalias claude-3-7-sonnet-latest\n")
    server.herd("create", "coder-m", "-f", str(modelfile))
    try:
        for name in (SONNET, "claude-3-7-sonnet-latest"):
            assert messages(server, name).status_code == 200, name
        # The Modelfile `herd show` writes makes the same model again, aliases included.
        shown = server.herd("show", "coder-m", "--modelfile").stdout
        assert f"\nALIAS {SONNET}" in shown and "\nALIAS claude-3-7-sonnet-latest" in shown
    finally:
        server.herd("rm", "coder-m")


@pytest.mark.django_db
def test_the_admin_checks_an_alias_as_create_does() -> None:
    first = ModelRecord.objects.create(name="first:latest", path="/x", aliases=[HAIKU + ":latest"])
    second = ModelRecord(name="second:latest", path="/x", aliases=["claude-haiku-4-5"])
    with pytest.raises(ValidationError, match="already an alias of 'first:latest'"):
        second.full_clean()
    second.aliases = ["first"]
    with pytest.raises(ValidationError, match="name of another model"):
        second.full_clean()
    second.aliases = [SONNET, SONNET + ":latest"]
    second.full_clean()
    assert second.aliases == [SONNET + ":latest"]
    first.full_clean()
