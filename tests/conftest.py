from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import ollama
import pytest
from openai import OpenAI

from tests.broker import Broker, start_broker
from tests.hub_server import FakeHub, populate
from tests.inprocess import InProcessServer, in_process_server
from tests.keyed import (
    KEY_CACHE_SECONDS,
    KEYED_ORIGIN,
    KEYED_PARALLEL,
    KeyedServer,
    KeyedWeb,
    make_keyed_web,
    start_keyed_server,
)
from tests.live import LIVE_FIXTURES, LiveGuard, LiveServer, drop_postgres_database, make_server
from tests.tiny_gguf import write_tiny_gguf
from tests.tiny_mmproj import write_tiny_mmproj

# The server's body limit in the live tests, small enough to test 413 cheaply.
LIVE_MAX_BODY = 1_000_000
# Where the in-process web server looks for its broker: a port nothing listens on.
NO_BROKER = "redis://127.0.0.1:1/0"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--compose",
        action="store_true",
        help="run the docker compose test (tests/compose/), which the other passes skip",
    )


@pytest.hookimpl(tryfirst=True)  # before ``-m "not live"`` deselects by the marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test that uses a live server's fixture, even through another fixture, is live. The
    compose test (minutes of image builds) runs only when asked for: make compose-test."""
    skip_compose = pytest.mark.skip(reason="the docker compose test runs in make compose-test")
    for item in items:
        if LIVE_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.live)
        if item.get_closest_marker("compose") and not config.getoption("--compose"):
            item.add_marker(skip_compose)


@pytest.hookimpl(tryfirst=True)  # before its fixtures are set up
def pytest_runtest_setup(item: pytest.Item) -> None:
    LiveGuard.allowed = item.get_closest_marker("live") is not None


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    """Redis alone (an embedded Valkey), for in-process tests: not a live fixture."""
    started = start_broker(tmp_path_factory.mktemp("broker"))
    yield started
    started.stop()


@pytest.fixture(scope="session")
def tiny_mmproj(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A vision projector for the tiny model: 32x32 pixels in, 16 embeddings out."""
    return write_tiny_mmproj(tmp_path_factory.mktemp("projectors") / "tiny-mmproj.gguf")


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 130K-parameter model: loads in milliseconds, generates thousands of tokens/s."""
    return write_tiny_gguf(tmp_path_factory.mktemp("models") / "tiny.gguf", n_ctx=4096)


@pytest.fixture(scope="session")
def slow_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 27M-parameter model, a few hundred tokens/s here: long enough generations to cancel,
    or to kill a worker under."""
    return write_tiny_gguf(
        tmp_path_factory.mktemp("models") / "slow.gguf",
        n_embd=512,
        n_layer=8,
        n_head=8,
        n_ff=1536,
        n_ctx=4096,
    )


@pytest.fixture(scope="session")
def server(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, slow_gguf: Path
) -> Iterator[LiveServer]:
    live = make_server(
        tmp_path_factory.mktemp("live"),
        {"tiny": tiny_gguf, "slow": slow_gguf},
        {"HERD_MAX_BODY": str(LIVE_MAX_BODY)},
    )
    live.start()
    yield live
    live.stop()
    if live.env.get("DATABASE_URL", "").startswith("postgres") and live.env[
        "DATABASE_URL"
    ] != os.environ.get("DATABASE_URL"):
        drop_postgres_database(live.env["DATABASE_URL"])


@pytest.fixture
def web(
    transactional_db: None, settings: Any, tiny_gguf: Path, slow_gguf: Path
) -> Iterator[InProcessServer]:
    """The web process in this one (tests.inprocess), set as ``server`` is (keys off, the
    same body limit, the same models), for the tests whose answer it decides before any
    worker is asked: not live. Its database is flushed after each test rather than rolled
    back: the usage middleware writes from a thread of its own, on a connection of its own,
    and what it wrote must not reach the next test."""
    settings.MAX_BODY_BYTES = LIVE_MAX_BODY
    settings.HERD_AUTH = "off"
    settings.HERD_AUTH_REQUIRED = False
    # No broker: where the web process counts metrics it logs that it could not, as it does
    # when its broker is down; a test that needs one fails rather than finding one that
    # happens to run on this machine.
    settings.REDIS_URL = NO_BROKER
    models = {"tiny": tiny_gguf, "slow": slow_gguf}
    with in_process_server(settings.HERD_HOST, settings.HERD_HOME, models) as web:
        yield web


@pytest.fixture(scope="session")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHub]:
    """A local stand-in for the Hugging Face hub (see tests.hub_server)."""
    fake = FakeHub()
    populate(fake, tmp_path_factory.mktemp("hub"))
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def pull_web(
    web: InProcessServer, hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> InProcessServer:
    """The web process in this one, asking the fake hub what ``pull_server`` asks it (for the
    pulls it refuses before any is queued)."""
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.url)
    return web


@pytest.fixture(scope="session")
def pull_server(tmp_path_factory: pytest.TempPathFactory, hub: FakeHub) -> Iterator[LiveServer]:
    """A server of its own for the pull tests, which kill its worker; HF_ENDPOINT is the
    fake hub, and beat looks for orphaned pulls every second."""
    root = tmp_path_factory.mktemp("pull-live")
    live = make_server(
        root,
        {},
        {
            "HF_ENDPOINT": hub.url,
            "HF_HOME": str(root / "hf"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HERD_BEAT_INTERVAL": "1",
            "HERD_PULL_CHUNK": "16KiB",
        },
    )
    live.start()
    yield live
    live.stop()
    if live.env.get("DATABASE_URL", "").startswith("postgres") and live.env[
        "DATABASE_URL"
    ] != os.environ.get("DATABASE_URL"):
        drop_postgres_database(live.env["DATABASE_URL"])


@pytest.fixture
def client(server: LiveServer) -> OpenAI:
    return OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=60)


@pytest.fixture
def ollama_client(server: LiveServer) -> ollama.Client:
    """The official ``ollama`` client, pointed at the live server."""
    return ollama.Client(host=server.base_url, timeout=60)


@pytest.fixture
def web_client(web: InProcessServer) -> OpenAI:
    """The official ``openai`` client, of the web process in this one."""
    return OpenAI(
        base_url=f"{web.base_url}/v1",
        api_key="unused",
        max_retries=0,
        timeout=60,
        http_client=web.http_client(),
    )


@pytest.fixture
def web_ollama_client(web: InProcessServer) -> ollama.Client:
    """The official ``ollama`` client, of the web process in this one."""
    return ollama.Client(host=web.base_url, timeout=60, transport=web.transport)


@pytest.fixture
def keyed_web(web: InProcessServer, settings: Any) -> KeyedWeb:
    """The web process in this one, set as ``keyed_server`` is (keys required, its origin, no
    key cache), with the same staff user and key: for the refusals it decides alone."""
    settings.HERD_AUTH = "required"
    settings.HERD_AUTH_REQUIRED = True
    settings.HERD_KEY_CACHE_SECONDS = float(KEY_CACHE_SECONDS)
    settings.HERD_ORIGINS = [KEYED_ORIGIN]
    settings.CORS_ALLOW_ALL_ORIGINS = False
    settings.CORS_ALLOWED_ORIGINS = [KEYED_ORIGIN]
    settings.HERD_PARALLEL = KEYED_PARALLEL
    return make_keyed_web(web)


@pytest.fixture(scope="session")
def keyed_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_gguf: Path, slow_gguf: Path
) -> Iterator[KeyedServer]:
    """A live server with HERD_AUTH=required (the shared ``server`` keeps auth off), with a
    staff user ``admin`` and its key ``staff_secret``."""
    live = start_keyed_server(
        tmp_path_factory.mktemp("keyed"),
        {"tiny": tiny_gguf, "slow": slow_gguf},
        {"HERD_ORIGINS": KEYED_ORIGIN, "HERD_PARALLEL": str(KEYED_PARALLEL)},
    )
    yield live
    live.stop()
    if live.env.get("DATABASE_URL", "").startswith("postgres") and live.env[
        "DATABASE_URL"
    ] != os.environ.get("DATABASE_URL"):
        drop_postgres_database(live.env["DATABASE_URL"])
