"""``POST /api/pull`` refuses what it cannot pull with a 4xx and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.inprocess import InProcessServer
from tests.pulling import pull_stream, pull_whole, pulls, tags


@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        ("hf.co/tester/missing-GGUF", 404, "repository tester/missing-GGUF not found"),
        ("hf.co/tester/nogguf", 404, "tester/nogguf has no GGUF files"),
        ("hf.co/tester/tiny-GGUF:Q2_K", 404, "has no quant Q2_K; it has: Q4_K_M, Q8_0"),
        ("hf.co/tester/noquant-GGUF", 400, "has no Q4_K_M; name a quant, one of: F16, Q8_0"),
        ("hf.co/tester/tiny-GGUF/missing.gguf", 404, "has no file missing.gguf"),
        ("hf.co/tester/huge-GGUF:Q4_K_M", 507, "not enough disk space"),
        ("hf.co/../tiny-GGUF", 400, "invalid model reference"),
        ("hf.co/tester/tiny-GGUF/../x.gguf", 400, "invalid model reference"),
        ("hf.co/tester/tiny-GGUF/sub/x.gguf", 400, "invalid model reference"),
        ("hf.co/tester", 400, "invalid model reference"),
        ("hf.co/tester/tiny-GGUF:Q4:K", 400, "invalid model reference"),
        ("hf.co/tester/tiny-GGUF/tiny-Q8_0.gguf:Q8_0", 400, "a file reference takes no tag"),
        ("not a name", 400, "invalid model name"),
        ("../evil", 400, "invalid model name"),
        ("llama3", 400, "Herd pulls from Hugging Face"),
    ],
)
def test_it_refuses_and_writes_nothing(
    pull_web: InProcessServer, model: str, status: int, message: str
) -> None:
    before = (pulls(pull_web), tags(pull_web), files_in(pull_web))
    got, (body,), _ = pull_stream(pull_web, model)
    assert got == status
    assert message in body["error"]
    whole = pull_whole(pull_web, model)
    assert whole.status_code == status
    assert message in whole.json()["error"]
    assert (pulls(pull_web), tags(pull_web), files_in(pull_web)) == before


def files_in(server: InProcessServer) -> list[Path]:
    return sorted((server.home / "models").rglob("*"))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "model is required"),
        ({"model": ""}, "model must be a non-empty string"),
        ({"model": 7}, "model must be a non-empty string"),
        ({"model": "hf.co/tester/tiny-GGUF", "stream": "yes"}, "stream must be true or false"),
    ],
)
def test_it_refuses_a_malformed_body(pull_web: InProcessServer, body: object, message: str) -> None:
    response = pull_web.post(f"{pull_web.base_url}/api/pull", json=body, timeout=10)
    assert response.status_code == 400
    assert response.json() == {"error": message}


def test_it_refuses_a_body_that_is_not_json(pull_web: InProcessServer) -> None:
    response = pull_web.post(f"{pull_web.base_url}/api/pull", content=b"{nope", timeout=10)
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]


def test_it_only_accepts_post(pull_web: InProcessServer) -> None:
    response = pull_web.get(f"{pull_web.base_url}/api/pull", timeout=10)
    assert response.status_code == 405
    assert "error" in response.json()
