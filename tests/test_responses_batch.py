"""``/v1/responses`` lines in the Batch API, through the openai client's files and batches:
each output line's body is a response object, and nothing is stored."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types.responses import Response

from tests.test_batches import output_lines, upload, wait_for


def response_line(custom_id: str, **body: Any) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": "tiny", "input": f"hello {custom_id}", "max_output_tokens": 16, **body},
    }


def test_a_responses_batch_answers_each_line_with_a_response_object(client: OpenAI) -> None:
    # No arguments: the grammar leaves the test model a call of a few tokens to write.
    empty = {"type": "object", "properties": {}, "additionalProperties": False}
    tools = [{"type": "function", "name": "f", "parameters": empty}]
    lines = [
        response_line("plain", instructions="Be brief."),
        response_line("call", tools=tools, tool_choice="required", max_output_tokens=200),
    ]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/responses", completion_window="24h"
    )
    done = wait_for(client, batch.id, ("completed", "failed"), timeout=60)
    assert done.status == "completed", done.errors
    results = {r["custom_id"]: r for r in output_lines(client, done.output_file_id)}
    assert set(results) == {"plain", "call"}
    bodies = {}
    for custom_id, result in results.items():
        assert result["error"] is None and result["response"]["status_code"] == 200
        bodies[custom_id] = Response.model_validate(result["response"]["body"])
    plain, call = bodies["plain"], bodies["call"]
    assert plain.id.startswith("resp_") and plain.output[0].type == "message"
    assert plain.instructions == "Be brief." and plain.usage and plain.usage.output_tokens > 0
    assert call.status == "completed" and call.output[0].type == "function_call"
    assert results["call"]["response"]["body"]["store"] is False
    # Batch responses are not kept.
    for body in bodies.values():
        with pytest.raises(openai.NotFoundError):
            client.responses.retrieve(body.id)


def test_a_responses_line_that_names_a_previous_response_fails_the_batch(client: OpenAI) -> None:
    lines = [response_line("bad", previous_response_id="resp_x"), response_line("fine")]
    batch = client.batches.create(
        input_file_id=upload(client, lines), endpoint="/v1/responses", completion_window="24h"
    )
    failed = wait_for(client, batch.id, ("completed", "failed"), timeout=30)
    assert failed.status == "failed" and failed.errors and failed.errors.data
    (error,) = failed.errors.data
    assert (error.line, error.param) == (1, "body.previous_response_id")
    assert "not available" in (error.message or "")
