"""Herd's web process in the test's own process: the ASGI application ``herd serve`` runs
(``project.asgi.application``: the edge gate around Django's handler and its middleware),
driven over httpx without a socket, against the test database pytest-django provides. No
worker, broker or subprocess: for the tests whose answer the web process decides alone
(validation, refusals at the edge, keys, unrouted paths), which the live server otherwise
answers after a few seconds of start-up.

``InProcessServer`` gives those tests what ``tests.live.LiveServer`` gives them: a
``base_url``, the ``httpx`` request functions bound to it (``web.post(url, ...)`` for
``httpx.post(url, ...)``), and an ``http_client()`` to hand the official clients (OpenAI,
Anthropic, Ollama), so that a test converted from the live server changes by its fixture.

A request runs through ``asgiref``'s ``async_to_sync`` from the test's thread: the code Django
runs ``sync_to_async`` (the ORM, the views' sync parts) comes back to that thread, so it sees
the test's transaction as the test does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import httpx2
from asgiref.sync import async_to_sync
from django.core import signals
from django.db import close_old_connections

from tests.http_methods import RequestMethods

# The client address the application sees (the live server sees loopback too).
CLIENT = ("127.0.0.1", 50000)


Exchange = tuple[int, list[tuple[bytes, bytes]], bytes]


class ASGIApplicationTransport(httpx.BaseTransport):
    """A synchronous httpx transport that hands each request to an ASGI application and
    returns its whole answer (httpx's own ``ASGITransport`` is asynchronous only)."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=CLIENT)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        status, headers, content = self.exchange(
            request.method, str(request.url), list(request.headers.raw), request.read()
        )
        return httpx.Response(status, headers=headers, content=content, request=request)

    def exchange(
        self, method: str, url: str, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> Exchange:
        """The application's status, headers and body (as sent: a compressed body stays
        compressed, for the client's response to decode as it would a socket's)."""
        request = httpx.Request(method, url, headers=headers, content=body)
        return async_to_sync(self._send)(request)

    async def _send(self, request: httpx.Request) -> Exchange:
        response = await self._asgi.handle_async_request(request)
        content = b"".join([part async for part in response.aiter_raw()])
        return response.status_code, list(response.headers.raw), content


class Httpx2Bridge(httpx2.BaseTransport):
    """The same, for the official clients built on ``httpx2`` (OpenAI's and Anthropic's)."""

    def __init__(self, inner: ASGIApplicationTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        status, headers, content = self._inner.exchange(
            request.method, str(request.url), list(request.headers.raw), request.read()
        )
        return httpx2.Response(status, headers=headers, content=content, request=request)


@contextmanager
def requests_keep_the_connection() -> Iterator[None]:
    """Django closes a request's database connection when it ends (``close_old_connections``
    on ``request_started`` and ``request_finished``): here that connection is the test's,
    inside its transaction. Django's own test client disconnects the handler the same way."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@dataclass
class InProcessServer(RequestMethods):
    """The web process in this one (see the module docstring). ``origin`` (the ``base_url``)
    names the host the settings answer to (``HERD_HOST``), as a client of the live server's
    names its host and port."""

    origin: str
    transport: ASGIApplicationTransport
    home: Path

    def __post_init__(self) -> None:
        self.http = httpx.Client(transport=self.transport)

    @property
    def base_url(self) -> str:
        return self.origin

    @property
    def port(self) -> int:
        """The port of ``base_url``, which a test puts in a Host header as a client would."""
        port = httpx.URL(self.base_url).port
        assert port is not None, self.base_url
        return port

    def http_client(self) -> httpx2.Client | None:
        """A client for the ``http_client`` of the official clients built on ``httpx2``
        (OpenAI, Anthropic); for one that takes httpx's options, ``transport`` (Ollama's)."""
        return httpx2.Client(transport=Httpx2Bridge(self.transport))

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, url, **kwargs)

    def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> AbstractContextManager[httpx.Response]:
        # The application has answered in full by then: the body comes from memory.
        return self.http.stream(method, url, **kwargs)


@cache
def digest_of(path: Path) -> str:
    """The sha256 ``herd import`` records, for a file the tests write once and never change."""
    from models_app.registration import file_sha256

    return file_sha256(path)


@contextmanager
def in_process_server(host: str, home: Path, models: dict[str, Path]) -> Iterator[InProcessServer]:
    """The web process answering as ``host`` from ``home`` (its HERD_HOME), with ``models``
    imported as ``herd import`` would. The caller provides the database (pytest-django's
    ``db``) and the settings."""
    from models_app.registration import do_import_model
    from project.asgi import application

    for name, path in models.items():
        # What ``herd import`` does, with the file's digest read once a session.
        do_import_model(name, path, sha256=digest_of(path))
    server = InProcessServer(f"http://{host}", ASGIApplicationTransport(application), home)
    with requests_keep_the_connection(), server.http:
        yield server
