"""``POST /api/pull``: the progress sequence Ollama clients read, and what a pull leaves."""

from __future__ import annotations

import hashlib

import httpx

from tests.hub_server import FakeHub
from tests.live import LiveServer
from tests.pulling import pull_stream, pull_whole, repo_folder, tags

PROGRESS = "hf.co/tester/progress-GGUF:Q4_K_M"


def test_it_streams_ollamas_progress_sequence(pull_server: LiveServer, hub: FakeHub) -> None:
    status, events, headers = pull_stream(pull_server, PROGRESS)
    assert status == 200
    assert headers["content-type"] == "application/x-ndjson"
    data = hub.repos["tester/progress-GGUF"].files["p-Q4_K_M.gguf"]
    sha = hashlib.sha256(data).hexdigest()

    assert events[0] == {"status": "pulling manifest"}
    assert events[-3:] == [
        {"status": "verifying sha256 digest"},
        {"status": "writing manifest"},
        {"status": "success"},
    ]
    progress = events[1:-3]
    assert len(progress) >= 3, progress  # a throttled download reports as it goes
    for event in progress:
        assert event["status"] == f"pulling {sha[:12]}"
        assert event["digest"] == f"sha256:{sha}"
        assert event["total"] == len(data)
    completed = [e["completed"] for e in progress]
    assert completed == sorted(completed)
    assert completed[-1] == len(data)
    assert any(0 < c < len(data) for c in completed)


def test_the_pulled_file_is_on_disk_and_the_model_is_listed(pull_server: LiveServer) -> None:
    assert pull_whole(pull_server, PROGRESS).json() == {"status": "success"}
    path = repo_folder(pull_server, "tester/progress-GGUF") / "p-Q4_K_M.gguf"
    assert path.is_file()
    listed = tags(pull_server)[PROGRESS]
    assert listed["size"] == path.stat().st_size
    assert listed["digest"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert listed["details"]["format"] == "gguf"
    models = httpx.get(f"{pull_server.base_url}/v1/models", timeout=10).json()["data"]
    assert PROGRESS in {m["id"] for m in models}
