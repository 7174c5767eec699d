"""httpx's request functions on a test server, so that a test or helper reads the same against
the live server (a socket) and the web process in the test's own (tests.inprocess):
``server.post(url, ...)`` where it would write ``httpx.post(url, ...)``."""

from __future__ import annotations

from contextlib import AbstractContextManager
from typing import Any

import httpx
import httpx2


class RequestMethods:
    """``get``, ``post``... over the subclass's ``request``."""

    @property
    def base_url(self) -> str:
        """``http://host:port``, where a client sends its requests."""
        raise NotImplementedError

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    def stream(
        self, method: str, url: str, **kwargs: Any
    ) -> AbstractContextManager[httpx.Response]:
        """``httpx.stream``: the response, its body read as the test iterates."""
        raise NotImplementedError

    def http_client(self) -> httpx2.Client | None:
        """What to pass an official client built on ``httpx2`` (OpenAI's, Anthropic's) as its
        ``http_client``: None, its own, to reach a server over a socket."""
        return None

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("OPTIONS", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)
