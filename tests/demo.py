"""A live server with a demo model from `herd install_demo`, for the demo models' tests."""

from __future__ import annotations

from pathlib import Path

from openai import OpenAI

from tests.live import LiveServer, make_server


def serve_demo(root: Path, name: str) -> LiveServer:
    """A live server, started, with the demo model ``name`` from `herd install_demo`."""
    # A demo model loads with its own context: seconds of allocation on a loaded machine.
    server = make_server(root, {}, {"HERD_HEARTBEAT_TTL": "10"})
    installed = server.herd("install_demo", name)
    assert name in installed.stdout
    server.start()
    return server


def openai_of(server: LiveServer) -> OpenAI:
    return OpenAI(base_url=f"{server.base_url}/v1", api_key="unused", max_retries=0, timeout=120)
