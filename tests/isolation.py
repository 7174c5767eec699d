"""Two users' keys on the keyed server, for the tests that play one user against another:
each is a key as ``herd keys create --user`` makes it; more keys of a user come from
``POST /herd/keys`` (a staff call, quicker than the command)."""

from __future__ import annotations

import io
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from tests.keyed import KeyedCalls


@dataclass(frozen=True)
class Member:
    user: str
    secret: str


def new_member(server: KeyedCalls, *flags: str) -> Member:
    """A key of a new user (made by the command, which creates the user)."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    return Member(user, server.create_key(f"{user}-key", "--user", user, *flags))


def another_key(server: KeyedCalls, member: Member, **fields: Any) -> Member:
    """Another key of ``member``'s user (``allowed_models`` and the rest as ``fields``)."""
    body = {"name": f"{member.user}-{uuid.uuid4().hex[:6]}", "user": member.user, **fields}
    reply = server.call("POST", "/herd/keys", server.staff_secret, json=body)
    assert reply.status_code == 201, reply.text
    return Member(member.user, reply.json()["secret"])


def chat_line(custom_id: str, model: str, max_tokens: int = 2) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": "hello"}],
        },
    }


def upload_batch_input(server: KeyedCalls, secret: str, lines: list[dict[str, Any]]) -> str:
    content = "\n".join(json.dumps(line) for line in lines).encode()
    reply = server.call(
        "POST",
        "/v1/files",
        secret,
        data={"purpose": "batch"},
        files={"file": ("input.jsonl", io.BytesIO(content))},
    )
    assert reply.status_code == 200, reply.text
    return str(reply.json()["id"])


def create_batch(server: KeyedCalls, secret: str, file_id: str) -> httpx.Response:
    body = {"input_file_id": file_id, "endpoint": "/v1/chat/completions"}
    return server.call("POST", "/v1/batches", secret, json=body)


def wait_for_batch(
    server: KeyedCalls, secret: str, batch_id: str, statuses: tuple[str, ...], timeout: float
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        batch = server.call("GET", f"/v1/batches/{batch_id}", secret).json()
        if batch["status"] in statuses:
            return dict(batch)
        if time.monotonic() > deadline:
            raise AssertionError(f"batch {batch_id} stuck in {batch['status']}")
        time.sleep(0.2)
