"""The OpenAI Batch API end to end, driven by the official openai client."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from openai import OpenAI
from openai.types import Batch

from tests.inprocess import InProcessServer
from tests.live import LiveServer, live_fixture, make_server

MAX_UPLOAD = 300_000


@live_fixture(scope="module")
def batch_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, slow_gguf: Path
) -> Iterator[LiveServer]:
    # Quick beat and redelivery, so that expiry and a dead worker's lines are handled in
    # seconds rather than minutes.
    server = make_server(
        tmp_path_factory.mktemp("batches"),
        {"tiny": tiny_gguf, "slow": slow_gguf},
        {
            "HERD_BEAT_INTERVAL": "1",
            "HERD_VISIBILITY_TIMEOUT": "4",
            "HERD_RESTORE_INTERVAL": "1",
            "HERD_MAX_UPLOAD": str(MAX_UPLOAD),
            # Smaller than the tests' batches, so that two of them on one lane take turns.
            "HERD_BATCH_WINDOW": "8",
        },
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def api(batch_server: LiveServer) -> OpenAI:
    return OpenAI(
        base_url=f"{batch_server.base_url}/v1", api_key="unused", max_retries=0, timeout=60
    )


@pytest.fixture
def web_api(web: InProcessServer, settings: Any) -> OpenAI:
    """The client of the web process in this one, with ``batch_server``'s upload limit: for
    what that process decides before any line is queued."""
    settings.HERD_MAX_UPLOAD = MAX_UPLOAD
    return OpenAI(
        base_url=f"{web.base_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=60,
        http_client=web.http_client(),
    )


def chat_line(custom_id: str, model: str = "tiny", max_tokens: int = 8) -> dict[str, Any]:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": model,
            "max_tokens": max_tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": f"hello {custom_id}"}],
        },
    }


def upload(api: OpenAI, lines: list[Any], raw: bytes | None = None) -> str:
    content = (
        raw
        if raw is not None
        else "\n".join(
            line if isinstance(line, str) else json.dumps(line) for line in lines
        ).encode()
    )
    return api.files.create(file=("input.jsonl", io.BytesIO(content)), purpose="batch").id


def wait_for(api: OpenAI, batch_id: str, statuses: tuple[str, ...], timeout: float) -> Batch:
    deadline = time.monotonic() + timeout
    while True:
        batch = api.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch stuck in {batch.status}: {batch.request_counts}")
        time.sleep(0.25)


def output_lines(api: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in api.files.content(file_id).text.splitlines()]


def test_a_batch_runs_every_line_once_and_writes_its_output(api: OpenAI) -> None:
    input_id = upload(api, [chat_line(f"req-{i}") for i in range(12)])
    batch = api.batches.create(
        input_file_id=input_id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={"team": "search"},
    )
    assert batch.status in ("validating", "in_progress")
    assert batch.metadata == {"team": "search"}
    done = wait_for(api, batch.id, ("completed", "failed"), timeout=60)
    assert done.status == "completed"
    assert done.request_counts is not None
    assert (
        done.request_counts.total,
        done.request_counts.completed,
        done.request_counts.failed,
    ) == (12, 12, 0)
    for stamp in ("created_at", "in_progress_at", "finalizing_at", "completed_at", "expires_at"):
        assert getattr(done, stamp), stamp
    assert done.error_file_id is None
    results = output_lines(api, done.output_file_id)
    assert sorted(r["custom_id"] for r in results) == sorted(f"req-{i}" for i in range(12))
    for result in results:
        assert result["error"] is None
        assert result["response"]["status_code"] == 200
        body = result["response"]["body"]
        assert body["object"] == "chat.completion"
        assert body["usage"]["completion_tokens"] > 0


def test_an_embeddings_batch_returns_vectors(api: OpenAI) -> None:
    lines = [
        {
            "custom_id": f"e{i}",
            "method": "POST",
            "url": "/v1/embeddings",
            "body": {"model": "tiny", "input": f"text {i}"},
        }
        for i in range(3)
    ]
    batch = api.batches.create(
        input_file_id=upload(api, lines), endpoint="/v1/embeddings", completion_window="24h"
    )
    done = wait_for(api, batch.id, ("completed", "failed"), timeout=60)
    assert done.status == "completed"
    for result in output_lines(api, done.output_file_id):
        assert len(result["response"]["body"]["data"][0]["embedding"]) == 64


@pytest.mark.parametrize(
    ("lines", "code", "line_number"),
    [
        (["{not json"], "invalid_json_line", 1),
        (
            [{"method": "POST", "url": "/v1/chat/completions", "body": {}}],
            "missing_required_parameter",
            1,
        ),
        ([chat_line("same"), chat_line("same")], "duplicate_custom_id", 2),
        ([{**chat_line("a"), "method": "GET"}], "invalid_method", 1),
        ([chat_line("a"), {**chat_line("b"), "url": "/v1/embeddings"}], "mismatched_endpoint", 2),
        ([chat_line("a", model="ghost")], "model_not_found", 1),
        ([{**chat_line("a"), "body": {"model": "tiny", "messages": []}}], "invalid_request", 1),
        (
            [{**chat_line("a"), "body": {**chat_line("a")["body"], "stream": True}}],
            "invalid_request",
            1,
        ),
        ([], "empty_file", 1),
    ],
)
def test_an_invalid_file_fails_the_batch_and_nothing_runs(
    web_api: OpenAI, lines: list[Any], code: str, line_number: int
) -> None:
    good = [chat_line(f"ok-{i}") for i in range(3)]
    batch = web_api.batches.create(
        input_file_id=upload(web_api, good + lines if lines else []),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    assert batch.status == "failed"
    assert batch.errors is not None and batch.errors.data
    error = batch.errors.data[0]
    assert error.code == code
    assert error.line == line_number + (len(good) if lines else 0)
    assert batch.request_counts is not None and batch.request_counts.total == 0
    assert batch.output_file_id is None and batch.failed_at


def test_batch_creation_rejects_bad_arguments(web_api: OpenAI) -> None:
    input_id = upload(web_api, [chat_line("a")])
    with pytest.raises(openai.BadRequestError) as caught:
        web_api.batches.create(
            input_file_id=input_id,
            endpoint="/v1/nope",  # type: ignore[arg-type]
            completion_window="24h",
        )
    assert caught.value.body["param"] == "endpoint"  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        web_api.batches.create(
            input_file_id="file-missing", endpoint="/v1/chat/completions", completion_window="24h"
        )
    user_file = web_api.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="user_data")
    with pytest.raises(openai.BadRequestError):
        web_api.batches.create(
            input_file_id=user_file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )


def test_the_files_api_stores_lists_serves_and_deletes(web_api: OpenAI) -> None:
    created = web_api.files.create(
        file=("notes.jsonl", io.BytesIO(b'{"a": 1}\n')), purpose="user_data"
    )
    assert (created.object, created.filename, created.bytes, created.purpose) == (
        "file",
        "notes.jsonl",
        9,
        "user_data",
    )
    assert web_api.files.retrieve(created.id).id == created.id
    assert created.id in [f.id for f in web_api.files.list()]
    assert web_api.files.content(created.id).text == '{"a": 1}\n'
    assert web_api.files.delete(created.id).deleted is True
    with pytest.raises(openai.NotFoundError):
        web_api.files.retrieve(created.id)
    with pytest.raises(openai.BadRequestError):
        web_api.files.create(file=("x", io.BytesIO(b"x")), purpose="fine-tune")


def test_a_file_over_the_upload_limit_is_413(web_api: OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        web_api.files.create(
            file=("big.jsonl", io.BytesIO(b"x" * (MAX_UPLOAD + 1))), purpose="batch"
        )
    assert caught.value.status_code == 413


def test_batches_are_listed_newest_first_with_after_and_limit(web_api: OpenAI) -> None:
    input_id = upload(web_api, [chat_line("a")])
    made = [
        web_api.batches.create(
            input_file_id=input_id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(3)
    ]
    first = web_api.batches.list(limit=2)
    assert [b.id for b in first.data] == made[::-1][:2]
    assert first.has_more
    after = web_api.batches.list(limit=2, after=made[1])
    assert after.data[0].id == made[0]


def test_cancel_stops_pending_lines_and_keeps_what_was_made(api: OpenAI) -> None:
    lines = [chat_line(f"c{i}", model="slow", max_tokens=150) for i in range(40)]
    batch = api.batches.create(
        input_file_id=upload(api, lines), endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while api.batches.retrieve(batch.id).request_counts.completed < 2:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    cancelling = api.batches.cancel(batch.id)
    assert cancelling.status in ("cancelling", "cancelled")
    cancelled = wait_for(api, batch.id, ("cancelled",), timeout=15)
    assert cancelled.cancelled_at and cancelled.cancelling_at
    counts = cancelled.request_counts
    assert counts is not None and 2 <= counts.completed < 40
    results = output_lines(api, cancelled.output_file_id)
    assert len(results) == counts.completed
    assert len({r["custom_id"] for r in results}) == len(results)


def test_a_batch_past_its_window_expires_with_its_partial_results(api: OpenAI) -> None:
    lines = [chat_line(f"x{i}", model="slow", max_tokens=150) for i in range(60)]
    batch = api.batches.create(
        input_file_id=upload(api, lines),
        endpoint="/v1/chat/completions",
        completion_window="3s",  # type: ignore[arg-type]  # Herd takes any <n>[smhd]
    )
    expired = wait_for(api, batch.id, ("expired", "completed"), timeout=30)
    assert expired.status == "expired"
    assert expired.expired_at
    counts = expired.request_counts
    assert counts is not None and counts.completed < 60
    assert len(output_lines(api, expired.output_file_id)) == counts.completed


def test_a_killed_worker_loses_no_line_and_runs_none_twice(
    batch_server: LiveServer, api: OpenAI
) -> None:
    lines = [chat_line(f"k{i}", model="slow", max_tokens=60) for i in range(30)]
    batch = api.batches.create(
        input_file_id=upload(api, lines), endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while api.batches.retrieve(batch.id).request_counts.completed < 5:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(batch_server.worker_pid(), signal.SIGKILL)
    done = wait_for(api, batch.id, ("completed", "failed"), timeout=120)
    assert done.status == "completed"
    assert done.request_counts is not None and done.request_counts.completed == 30
    results = output_lines(api, done.output_file_id)
    custom_ids = [r["custom_id"] for r in results]
    assert sorted(custom_ids) == sorted(f"k{i}" for i in range(30))
    assert len(set(custom_ids)) == 30


def test_interactive_requests_keep_their_latency_while_a_batch_runs(
    batch_server: LiveServer, api: OpenAI
) -> None:
    lines = [chat_line(f"b{i}", model="slow", max_tokens=120) for i in range(40)]
    batch = api.batches.create(
        input_file_id=upload(api, lines), endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 60
    while api.batches.retrieve(batch.id).request_counts.completed < 2:  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    # Measure one batch line's time as the worker runs it now, under the same load.
    started = time.monotonic()
    before = api.batches.retrieve(batch.id).request_counts.completed  # type: ignore[union-attr]
    while api.batches.retrieve(batch.id).request_counts.completed < before + 2:  # type: ignore[union-attr]
        time.sleep(0.02)
    per_line = (time.monotonic() - started) / 2

    def first_token_wait() -> float:
        asked = time.monotonic()
        stream = api.chat.completions.create(
            model="slow",
            messages=[{"role": "user", "content": "quick"}],
            max_tokens=5,
            stream=True,
        )
        next(chunk for chunk in stream if chunk.choices and chunk.choices[0].delta.content)
        stream.close()
        return time.monotonic() - asked

    waits = sorted(first_token_wait() for _ in range(3))
    # Each waits for the line in progress, not for the backlog (the median, so that one
    # stall of a shared machine does not decide).
    assert waits[1] < 1.5 * per_line + 0.5, (waits, per_line)
    backlog = api.batches.retrieve(batch.id).request_counts
    assert backlog is not None and backlog.completed < 30, "the batch was not saturating the worker"
    api.batches.cancel(batch.id)
    wait_for(api, batch.id, ("cancelled",), timeout=15)


def test_two_batches_on_one_lane_take_turns(api: OpenAI) -> None:
    big = api.batches.create(
        input_file_id=upload(
            api, [chat_line(f"big{i}", model="slow", max_tokens=60) for i in range(30)]
        ),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    small = api.batches.create(
        input_file_id=upload(
            api, [chat_line(f"small{i}", model="slow", max_tokens=60) for i in range(4)]
        ),
        endpoint="/v1/chat/completions",
        completion_window="24h",
    )
    small_done = wait_for(api, small.id, ("completed",), timeout=60)
    big_now = api.batches.retrieve(big.id)
    # The later, smaller batch did not wait for the earlier one to finish.
    assert big_now.status == "in_progress"
    assert big_now.request_counts is not None and big_now.request_counts.completed < 30
    assert small_done.request_counts is not None and small_done.request_counts.completed == 4
    api.batches.cancel(big.id)
    wait_for(api, big.id, ("cancelled",), timeout=15)
