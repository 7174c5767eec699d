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
from contextlib import contextmanager
from dataclasses import dataclass
from io import StringIO
from pathlib import Path
from typing import Any

import httpx
from asgiref.sync import async_to_sync
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections

# The client address the application sees (the live server sees loopback too).
CLIENT = ("127.0.0.1", 50000)


class ASGIApplicationTransport(httpx.BaseTransport):
    """A synchronous httpx transport that hands each request to an ASGI application and
    returns its whole answer (httpx's own ``ASGITransport`` is asynchronous only)."""

    def __init__(self, app: Any) -> None:
        self._asgi = httpx.ASGITransport(app=app, client=CLIENT)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        forwarded = httpx.Request(
            request.method, request.url, headers=request.headers, content=body
        )
        status, headers, content = async_to_sync(self._send)(forwarded)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _send(self, request: httpx.Request) -> tuple[int, httpx.Headers, bytes]:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return response.status_code, response.headers, content


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
class InProcessServer:
    """The web process in this one (see the module docstring). ``base_url`` names the host
    the settings answer to (``HERD_HOST``), as a client of the live server would."""

    base_url: str
    transport: httpx.BaseTransport

    def __post_init__(self) -> None:
        self.http = httpx.Client(transport=self.transport)

    def http_client(self) -> httpx.Client:
        """An httpx client for an official client's ``http_client`` (OpenAI, Anthropic); for
        one that takes httpx's options instead, ``transport`` (``ollama.Client``)."""
        return httpx.Client(transport=self.transport)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, url, **kwargs)

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.head(url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.options(url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.post(url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.put(url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.patch(url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.http.delete(url, **kwargs)


@contextmanager
def in_process_server(host: str, models: dict[str, Path]) -> Iterator[InProcessServer]:
    """The web process answering as ``host``, with ``models`` imported as ``herd import``
    would. The caller provides the database (pytest-django's ``db``) and the settings."""
    from project.asgi import application

    for name, path in models.items():
        call_command("import_model", name, str(path), stdout=StringIO())
    server = InProcessServer(f"http://{host}", ASGIApplicationTransport(application))
    with requests_keep_the_connection(), server.http:
        yield server
