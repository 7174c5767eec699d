"""A UsageRecord per request (key, user, team, model, endpoint, tokens, times, status), and the
staff usage API that totals them by key, team, model and day."""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import httpx
import pytest

from tests.keyed import KeyedServer

pytestmark = pytest.mark.live

CHAT = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "count with me"}],
    "max_tokens": 6,
    "temperature": 0,
    "seed": 7,
}


def usage_records(server: KeyedServer, key_name: str) -> list[dict[str, Any]]:
    script = (
        "import json; from accounts.models import UsageRecord; "
        f"rows = UsageRecord.objects.filter(key__name={key_name!r}).order_by('id').values("
        "'endpoint', 'method', 'status', 'model', 'prompt_tokens', 'completion_tokens', "
        "'duration_ms', 'ttft_ms', 'user__username', 'team__name'); "
        "print(json.dumps(list(rows)))"
    )
    # The last line: `herd shell` may say what it imported first.
    output = server.herd("shell", "-c", script).stdout.strip().splitlines()[-1]
    return list(json.loads(output))


def wait_for_records(server: KeyedServer, key_name: str, count: int) -> list[dict[str, Any]]:
    # Records are written after each response has ended, off the request path.
    deadline = time.monotonic() + 10
    while True:
        rows = usage_records(server, key_name)
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def stream_chat(server: KeyedServer, secret: str, **extra: Any) -> str:
    with httpx.stream(
        "POST",
        f"{server.base_url}/v1/chat/completions",
        headers={"Authorization": f"Bearer {secret}"},
        json={**CHAT, "stream": True, **extra},
        timeout=60,
    ) as reply:
        assert reply.status_code == 200
        return reply.read().decode()


def final_usage(sse: str) -> dict[str, Any]:
    chunks = [json.loads(line[6:]) for line in sse.splitlines() if line.startswith("data: {")]
    return dict(next(c["usage"] for c in reversed(chunks) if c.get("usage")))


def test_each_request_leaves_a_usage_record(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("usage-rec", "--team", "green", "--user", "gina")
    whole = keyed_server.call("POST", "/v1/chat/completions", secret, json=CHAT)
    assert whole.status_code == 200
    counts = whole.json()["usage"]
    with_usage = stream_chat(keyed_server, secret, stream_options={"include_usage": True})
    streamed = final_usage(with_usage)
    # Greedy with a seed: the same answer. How much of the prompt the cache held is the
    # cache's (the second request finds more of it), not the answer's.
    cached = streamed.pop("prompt_tokens_details")["cached_tokens"]
    assert 0 <= cached < streamed["prompt_tokens"]
    counts.pop("prompt_tokens_details")
    assert streamed == counts
    stream_chat(keyed_server, secret)  # no usage in the stream: counted from the worker's event
    refused = keyed_server.complete(secret, model="no-such-model")
    assert refused.status_code == 404

    rows = wait_for_records(keyed_server, "usage-rec", 4)
    assert [(r["endpoint"], r["status"], r["model"]) for r in rows] == [
        ("/v1/chat/completions", 200, "tiny:latest"),
        ("/v1/chat/completions", 200, "tiny:latest"),
        ("/v1/chat/completions", 200, "tiny:latest"),
        ("/v1/completions", 404, "no-such-model:latest"),
    ]
    for row in rows[:3]:
        assert (row["prompt_tokens"], row["completion_tokens"]) == (
            counts["prompt_tokens"],
            counts["completion_tokens"],
        )
        assert row["user__username"] == "gina" and row["team__name"] == "green"
        assert row["duration_ms"] > 0
    assert rows[0]["ttft_ms"] is None  # a whole answer has no first chunk
    assert 0 < rows[1]["ttft_ms"] <= rows[1]["duration_ms"]
    assert rows[3]["prompt_tokens"] == rows[3]["completion_tokens"] == 0


def usage(server: KeyedServer, query: str) -> list[dict[str, Any]]:
    reply = server.call("GET", f"/herd/usage?{query}", server.staff_secret)
    assert reply.status_code == 200, reply.text
    return list(reply.json())


def test_the_usage_api_totals_by_key_team_model_and_day(keyed_server: KeyedServer) -> None:
    first = keyed_server.create_key("usage-a", "--team", "blue")
    second = keyed_server.create_key("usage-b", "--team", "blue")
    totals = {"usage-a": [0, 0], "usage-b": [0, 0]}
    for name, secret, model in (
        ("usage-a", first, "tiny"),
        ("usage-a", first, "slow"),
        ("usage-b", second, "tiny"),
    ):
        reply = keyed_server.complete(secret, model=model, max_tokens=3)
        assert reply.status_code == 200
        counts = reply.json()["usage"]
        totals[name][0] += counts["prompt_tokens"]
        totals[name][1] += counts["completion_tokens"]
    wait_for_records(keyed_server, "usage-a", 2)
    wait_for_records(keyed_server, "usage-b", 1)

    (row_a,) = usage(keyed_server, "group_by=key&key=usage-a")
    assert row_a["group"] == "usage-a"
    assert row_a["requests"] == 2
    assert [row_a["prompt_tokens"], row_a["completion_tokens"]] == totals["usage-a"]
    assert row_a["total_tokens"] == sum(totals["usage-a"])

    (team,) = usage(keyed_server, "group_by=team&team=blue")
    assert team["group"] == "blue" and team["requests"] == 3
    assert team["total_tokens"] == sum(totals["usage-a"]) + sum(totals["usage-b"])

    by_model = {r["group"]: r["requests"] for r in usage(keyed_server, "group_by=model&team=blue")}
    assert by_model == {"tiny:latest": 2, "slow:latest": 1}

    today = dt.datetime.now(dt.UTC).date().isoformat()
    by_day = usage(keyed_server, "group_by=day&team=blue")
    assert [(r["group"], r["requests"]) for r in by_day] == [(today, 3)]

    future = usage(keyed_server, "group_by=key&key=usage-a&since=2999-01-01T00:00:00Z")
    assert future == []


def test_the_usage_api_refuses_a_bad_grouping(keyed_server: KeyedServer) -> None:
    reply = keyed_server.call("GET", "/herd/usage?group_by=colour", keyed_server.staff_secret)
    assert reply.status_code == 400
