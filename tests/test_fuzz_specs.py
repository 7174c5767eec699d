"""The official OpenAI and Ollama documents (tests/specs/) fuzz a live server with the tiny
model: schemathesis generates requests, valid and not, for every operation Herd serves, and
each answer must be no 5xx and, where the document describes its status, match the
document's schema. Bounded: a fixed number of examples per operation, drawn from a fixed seed,
so the run takes the same couple of minutes every time.

The checks are schemathesis's ``not_a_server_error`` and ``response_schema_conformance``
(which validates the answers whose status the document describes: its 200s). Streamed
chunks and the places where the document contradicts its own examples are checked, and
excused, in tests/test_spec_shapes.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.live import LiveServer

SPECS = Path(__file__).with_name("specs")
# Per operation, in each generation mode (valid and invalid requests); schemathesis's coverage
# phase (every boundary of every field, over a thousand requests for chat alone) is left out
# to keep the run to a couple of minutes.
EXAMPLES = 15
CONFIG = {
    "generation": {"max-examples": EXAMPLES, "deterministic": True, "mode": "all"},
    "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
}
# Ollama's model management (create, copy, pull, push, delete) changes the server the other
# tests share, and its tests drive it on purpose; the fuzzer keeps to what reads or generates.
OLLAMA_OPERATIONS = "^/api/(generate|chat|embed|tags|ps|show|version)$"


def fuzz_settings() -> Any:
    return settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def load(name: str) -> schemathesis.BaseSchema:
    config = SchemathesisConfig.from_dict(CONFIG)
    return schemathesis.openapi.from_path(SPECS / name, config=config)


@pytest.fixture(scope="module")
def openai_spec() -> schemathesis.BaseSchema:
    return load("openai-herd.yaml")


@pytest.fixture(scope="module")
def ollama_spec() -> schemathesis.BaseSchema:
    return load("ollama-openapi.yaml")


openai_schema = schemathesis.pytest.from_fixture("openai_spec")
ollama_schema = schemathesis.pytest.from_fixture("ollama_spec").include(
    path_regex=OLLAMA_OPERATIONS
)


def aim_at_the_tiny_model(case: schemathesis.Case) -> None:
    """Generated model names are random strings, which only ever find a 404: most cases
    name the live model instead, so the fuzzer reaches the worker."""
    body = case.body
    if isinstance(body, dict) and "model" in body and len(str(body["model"])) % 4:
        body["model"] = "tiny"


CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.mark.live
@openai_schema.parametrize()
@fuzz_settings()
def test_openai_document(case: schemathesis.Case, server: LiveServer) -> None:
    aim_at_the_tiny_model(case)
    case.call_and_validate(base_url=f"{server.base_url}/v1", checks=CHECKS, timeout=120)


@pytest.mark.live
@ollama_schema.parametrize()
@fuzz_settings()
def test_ollama_document(case: schemathesis.Case, server: LiveServer) -> None:
    aim_at_the_tiny_model(case)
    case.call_and_validate(base_url=server.base_url, checks=CHECKS, timeout=120)
