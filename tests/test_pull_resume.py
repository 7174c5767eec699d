"""A pull whose worker is killed mid-download resumes from the partial file."""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import httpx

from tests.hub_server import FakeHub
from tests.live import LiveServer
from tests.pulling import pull_stream, pulls, repo_folder

NAME = "hf.co/tester/resume-GGUF:Q4_K_M"
REPO = "tester/resume-GGUF"


def test_a_pull_resumes_after_its_worker_is_killed(pull_server: LiveServer, hub: FakeHub) -> None:
    data = hub.repos[REPO].files["r-Q4_K_M.gguf"]
    outcome: list[tuple[int, list[dict[str, Any]], httpx.Headers]] = []
    client = threading.Thread(target=lambda: outcome.append(pull_stream(pull_server, NAME)))
    client.start()
    while hub.bytes_sent(REPO) < len(data) // 3:
        client.join(0.05)
    os.kill(pull_server.worker_pid(), signal.SIGKILL)
    client.join(120)
    assert outcome, "the pull did not finish within 120s of its worker's death"

    # The client's one stream saw the pull through, across the worker's death.
    status, events, _ = outcome[0]
    assert status == 200
    assert events[-1] == {"status": "success"}
    first, *after = hub.transfers_of(REPO)
    assert not first.finished and first.start == 0
    assert after, "the pull never came back"
    assert after[0].start > 0  # a Range request from where the partial file ended
    assert sum(t.sent for t in after) < len(data)
    assert (repo_folder(pull_server, REPO) / "r-Q4_K_M.gguf").read_bytes() == data
    (job,) = pulls(pull_server, NAME)
    assert job["status"] == "ready"
    assert job["completed"] == job["total"] == len(data)
