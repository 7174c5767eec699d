"""The OpenAPI schema of the REST endpoints (drf-spectacular) at /openapi.json, and a bounded
schemathesis run over it against a live server that finds no 5xx."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from tests.keyed import KeyedServer, start_keyed_server
from tests.live import drop_postgres_database, live_fixture

pytestmark = pytest.mark.live


@live_fixture(scope="module")
def fuzzed_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path
) -> Iterator[KeyedServer]:
    """A server of its own: the fuzzing makes and revokes keys at random."""
    live = start_keyed_server(tmp_path_factory.mktemp("fuzzed"), {"tiny": tiny_gguf})
    yield live
    live.stop()
    if live.env.get("DATABASE_URL", "").startswith("postgres") and live.env[
        "DATABASE_URL"
    ] != os.environ.get("DATABASE_URL"):
        drop_postgres_database(live.env["DATABASE_URL"])


def test_the_schema_describes_the_rest_endpoints(fuzzed_server: KeyedServer) -> None:
    reply = httpx.get(f"{fuzzed_server.base_url}/openapi.json", timeout=30)
    assert reply.status_code == 200
    schema = reply.json()
    assert schema["openapi"].startswith("3.")
    for path in ("/herd/keys", "/herd/keys/{id}/revoke", "/herd/usage", "/v1/batches"):
        assert path in schema["paths"], path
    created = schema["paths"]["/herd/keys"]["post"]["responses"]["201"]
    assert "secret" in str(created) or "$ref" in str(created)
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


@pytest.fixture
def openapi(fuzzed_server: KeyedServer) -> Any:
    return schemathesis.openapi.from_url(f"{fuzzed_server.base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("openapi")


@pytest.mark.timeout(240)
@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzing_the_rest_endpoints_finds_no_server_error(
    case: Any, fuzzed_server: KeyedServer
) -> None:
    # Keep the staff key (the first made): revoking it would end the run's reach.
    if case.path_parameters and case.path_parameters.get("id") == 1:
        case.path_parameters["id"] = 0
    response = case.call(
        headers={"Authorization": f"Bearer {fuzzed_server.staff_secret}"}, timeout=30
    )
    case.validate_response(response, checks=[not_a_server_error])
