"""Size and keys are enforced before a body is read: a client without a key, or with a body
over the limit (declared, or streamed without a length), is answered at once, while it is
still sending, instead of the server spooling what it sends to disk first. Each test sends a
body it never finishes, over a raw connection: the answer can only come from the gate."""

from __future__ import annotations

import socket
import time

import pytest

from tests.keyed import KeyedServer

pytestmark = pytest.mark.live

MIB = 1 << 20
# The keyed server's HERD_MAX_BODY is the default.
MAX_BODY = 16 * MIB


def chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def answer_while_sending(
    server: KeyedServer, path: str, headers: dict[str, str], body_bytes: int
) -> int:
    """Open a request to ``path`` whose body never ends (chunked, unless ``headers`` declare a
    length), send up to ``body_bytes`` of it, and return the status the server answers with
    before the body is over."""
    head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
    if "Content-Length" not in headers:
        headers = {**headers, "Transfer-Encoding": "chunked"}
    head += "".join(f"{name}: {value}\r\n" for name, value in headers.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=60) as sock:
        sock.sendall(head.encode())
        block = b"x" * MIB
        sent = 0
        try:
            while sent < body_bytes:
                sock.sendall(chunk(block) if "Transfer-Encoding" in headers else block)
                sent += len(block)
        except OSError:
            pass  # the server answered and closed while this was still sending
        # The body is not finished: a server that waits for its end never answers.
        deadline = time.monotonic() + 60
        received = b""
        while b"\r\n" not in received and time.monotonic() < deadline:
            try:
                data = sock.recv(4096)
            except TimeoutError:
                break
            if not data:
                break
            received += data
    assert received.startswith(b"HTTP/1.1 "), received[:200]
    return int(received.split(b" ", 2)[1])


def test_a_body_without_a_key_is_refused_before_it_is_read(keyed_server: KeyedServer) -> None:
    for path in ("/v1/chat/completions", "/api/chat", "/v1/files", "/api/blobs/sha256:" + "0" * 64):
        status = answer_while_sending(
            keyed_server, path, {"Content-Type": "application/json"}, 4 * MIB
        )
        assert status == 401, path
    # A key nobody has is no better.
    bad = {"Authorization": "Bearer herd-not-a-key-anybody-has"}
    assert answer_while_sending(keyed_server, "/v1/completions", bad, 2 * MIB) == 401


def test_a_body_declared_over_the_limit_is_refused_before_it_is_read(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("gate-declared")
    headers = {
        "Authorization": f"Bearer {secret}",
        "Content-Type": "application/json",
        "Content-Length": str(600 * MIB),
    }
    assert answer_while_sending(keyed_server, "/v1/chat/completions", headers, 0) == 413


def test_a_streamed_body_over_the_limit_is_refused_when_it_passes_it(
    keyed_server: KeyedServer,
) -> None:
    secret = keyed_server.create_key("gate-streamed")
    headers = {"Authorization": f"Bearer {secret}", "Content-Type": "application/json"}
    status = answer_while_sending(keyed_server, "/v1/chat/completions", headers, MAX_BODY + 4 * MIB)
    assert status == 413
    # Under the limit, the same key's requests are served as before.
    assert keyed_server.complete(secret).status_code == 200
