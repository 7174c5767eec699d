"""The default install (loopback, keys off, what ``make run`` gives) on a developer's laptop:
no other site's page can change or run anything through the browser. A call that changes
something from an ``Origin`` not in ``HERD_ORIGINS`` is refused (403), a JSON endpoint takes
no ``text/plain`` body nor a form posted from a page (415, so no simple cross-site POST gets
through; ``curl -d``'s form declaration, from no page, is read as JSON), and a
``Host`` outside the loopback names is refused (a page that pointed its own name at
127.0.0.1). The server's own pages (same origin) work as before."""

from __future__ import annotations

import json
import subprocess
import uuid

import httpx

from accounts.hosts import default_allowed_hosts
from tests.http_methods import RequestMethods
from tests.inprocess import InProcessServer
from tests.live import LiveServer

EVIL = "http://evil.example"


def post(server: RequestMethods, path: str, body: str, **headers: str) -> httpx.Response:
    return server.post(
        f"{server.base_url}{path}", content=body.encode(), headers=headers, timeout=60
    )


def model_names(server: RequestMethods) -> set[str]:
    tags = server.get(f"{server.base_url}/api/tags", timeout=30).json()
    return {model["name"] for model in tags["models"]}


def test_another_sites_page_cannot_copy_create_pull_or_run_models(web: InProcessServer) -> None:
    stolen = f"stolen-{uuid.uuid4().hex[:6]}"
    attacks = [
        ("/api/copy", f'{{"source": "tiny", "destination": "{stolen}"}}'),
        ("/api/create", f'{{"model": "{stolen}", "from": "tiny", "stream": false}}'),
        ("/api/pull", '{"model": "hf.co/evil/evil:Q4_0", "stream": false}'),
        ("/api/delete", '{"model": "tiny"}'),
        (
            "/v1/chat/completions",
            '{"model": "tiny", "messages": [{"role": "user", "content": "x"}]}',
        ),
    ]
    for path, body in attacks:
        # A form's or fetch's simple request: text/plain, no preflight.
        reply = post(web, path, body, Origin=EVIL, **{"Content-Type": "text/plain"})
        assert reply.status_code == 403, (path, reply.text)
        # Declared as JSON it is no simple request (the browser asks first, and CORS says
        # no), and the web refuses the origin all the same.
        as_json = post(web, path, body, Origin=EVIL, **{"Content-Type": "application/json"})
        assert as_json.status_code == 403, (path, as_json.text)
    error = reply.json()["error"]
    assert "evil.example" in error["message"] and error["code"] == "origin_not_allowed"
    assert stolen not in {name.split(":")[0] for name in model_names(web)}
    assert "tiny:latest" in model_names(web)


def test_a_json_endpoint_takes_no_form_or_text_body(web: InProcessServer) -> None:
    body = '{"source": "tiny", "destination": "never"}'
    for content_type in ("text/plain", "application/x-www-form-urlencoded"):
        # From a page (a browser sends Origin with every POST), even the web's own.
        reply = post(web, "/api/copy", body, Origin=web.base_url, **{"Content-Type": content_type})
        assert reply.status_code == 415, reply.text
        assert set(reply.json()) == {"error"}
    reply = post(web, "/api/copy", body, **{"Content-Type": "text/plain"})
    assert reply.status_code == 415, reply.text
    reply = post(web, "/v1/completions", '{"model": "tiny"}', **{"Content-Type": "text/plain"})
    assert reply.status_code == 415
    assert reply.json()["error"]["code"] == "unsupported_media_type"


def test_the_servers_own_origin_and_reads_are_let_through(server: LiveServer) -> None:
    body = '{"model": "tiny", "prompt": "hello", "max_tokens": 2}'
    own = post(
        server,
        "/v1/completions",
        body,
        Origin=server.base_url,
        **{"Content-Type": "application/json"},
    )
    assert own.status_code == 200, own.text
    # Reading is CORS's to guard: the browser keeps the answer from the other site's page.
    read = httpx.get(f"{server.base_url}/api/tags", headers={"Origin": EVIL}, timeout=30)
    assert read.status_code == 200
    assert "Access-Control-Allow-Origin" not in read.headers


def test_a_host_that_is_not_this_machine_is_refused(web: InProcessServer) -> None:
    for path in ("/api/tags", "/v1/models"):
        reply = web.get(
            f"{web.base_url}{path}", headers={"Host": f"evil.example:{web.port}"}, timeout=30
        )
        assert reply.status_code == 403, reply.text
        assert "evil.example" in str(reply.json()["error"])
    page = web.get(f"{web.base_url}/", headers={"Host": "evil.example"}, timeout=30)
    assert page.status_code == 400
    for host in (f"localhost:{web.port}", f"127.0.0.1:{web.port}"):
        reply = web.get(f"{web.base_url}/api/tags", headers={"Host": host}, timeout=30)
        assert reply.status_code == 200, host


def test_hosts_answered_by_default() -> None:
    assert default_allowed_hosts("127.0.0.1:11434") == [
        "localhost",
        ".localhost",
        "127.0.0.1",
        "[::1]",
        "127.0.0.1",
    ]
    assert "[::1]" in default_allowed_hosts("[::1]:11434")
    assert default_allowed_hosts("0.0.0.0:11434") == ["*"]
    assert default_allowed_hosts("herd.example:80") == ["*"]


def test_curl_d_without_a_content_type_is_read_as_json(server: LiveServer) -> None:
    """``curl -d '{...}'`` declares a form; Ollama's own examples are written so."""
    done = subprocess.run(
        [
            "curl",
            "-s",
            f"{server.base_url}/api/generate",
            "-d",
            '{"model": "tiny", "prompt": "hi", "stream": false, "options": {"num_predict": 2}}',
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(done.stdout)["done"] is True, done.stdout
