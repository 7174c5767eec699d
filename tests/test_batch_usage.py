"""Each batch line leaves a usage record on the key that created the batch."""

from __future__ import annotations

import io
import json
import time

from openai import OpenAI

from tests.keyed import KeyedServer
from tests.test_usage import usage_records


def test_batch_lines_are_recorded_as_usage_of_the_batchs_key(keyed_server: KeyedServer) -> None:
    secret = keyed_server.create_key("batcher", "--team", "night", "--user", "bea")
    api = OpenAI(base_url=f"{keyed_server.base_url}/v1", api_key=secret, max_retries=0)
    lines = "\n".join(
        json.dumps(
            {
                "custom_id": f"u{i}",
                "method": "POST",
                "url": "/v1/completions",
                "body": {"model": "tiny", "prompt": f"p{i}", "max_tokens": 5, "temperature": 0},
            }
        )
        for i in range(3)
    )
    upload = api.files.create(file=("u.jsonl", io.BytesIO(lines.encode())), purpose="batch")
    batch = api.batches.create(
        input_file_id=upload.id, endpoint="/v1/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while (batch := api.batches.retrieve(batch.id)).status != "completed":
        assert time.monotonic() < deadline, batch.status
        time.sleep(0.2)
    output = [
        json.loads(line) for line in api.files.content(batch.output_file_id or "").text.splitlines()
    ]
    expected = sorted(r["response"]["body"]["usage"]["completion_tokens"] for r in output)

    # The lines were recorded as they finished, before the batch completed.
    rows = [
        r
        for r in usage_records(keyed_server, "batcher")
        if r["endpoint"] == "/v1/completions (batch)"
    ]
    assert len(rows) == 3
    assert sorted(r["completion_tokens"] for r in rows) == expected
    assert all(r["prompt_tokens"] > 0 and r["status"] == 200 for r in rows)
    assert {(r["user__username"], r["team__name"], r["model"]) for r in rows} == {
        ("bea", "night", "tiny:latest")
    }
