"""Pulling from the hub: which file a reference means, split models, checksums, joined pulls,
and a pulled model answering chat."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import httpx

from tests.hub_server import FakeHub
from tests.live import LiveServer
from tests.pulling import partials, pull_stream, pull_whole, pulls, repo_folder, tags


def show(server: LiveServer, name: str) -> dict[str, Any]:
    response = httpx.post(f"{server.base_url}/api/show", json={"model": name}, timeout=10)
    response.raise_for_status()
    return dict(response.json())


def test_a_bare_repo_reference_pulls_q4_k_m_and_answers_chat(pull_server: LiveServer) -> None:
    assert pull_whole(pull_server, "hf.co/tester/tiny-GGUF").json() == {"status": "success"}
    record = show(pull_server, "hf.co/tester/tiny-GGUF:latest")
    assert record["modelfile"].count("tiny-Q4_K_M.gguf") == 1
    reply = httpx.post(
        f"{pull_server.base_url}/v1/chat/completions",
        json={
            "model": "hf.co/tester/tiny-GGUF",
            "messages": [{"role": "user", "content": "hello"}],
            "max_tokens": 8,
            "temperature": 0,
        },
        timeout=60,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"]
    assert reply.json()["usage"]["completion_tokens"] > 0


def test_a_repos_vision_projector_is_pulled_beside_the_model(
    pull_server: LiveServer, hub: FakeHub
) -> None:
    name = "hf.co/tester/tiny-GGUF/tiny-Q4_K_M.gguf"
    assert pull_whole(pull_server, name).json() == {"status": "success"}
    projector = repo_folder(pull_server, "tester/tiny-GGUF") / "mmproj-tiny-F16.gguf"
    assert projector.read_bytes() == hub.repos["tester/tiny-GGUF"].files["mmproj-tiny-F16.gguf"]
    record = show(pull_server, f"{name}:latest")
    assert "vision" in record["capabilities"]
    assert f"FROM {projector}" in record["modelfile"]


def test_the_quant_is_matched_without_case(pull_server: LiveServer, hub: FakeHub) -> None:
    assert pull_whole(pull_server, "hf.co/tester/tiny-GGUF:q8_0").json() == {"status": "success"}
    path = repo_folder(pull_server, "tester/tiny-GGUF") / "tiny-Q8_0.gguf"
    assert path.read_bytes() == hub.repos["tester/tiny-GGUF"].files["tiny-Q8_0.gguf"]
    assert (
        tags(pull_server)["hf.co/tester/tiny-GGUF:q8_0"]["digest"]
        == hashlib.sha256(path.read_bytes()).hexdigest()
    )


def test_a_file_reference_pulls_that_file(pull_server: LiveServer, hub: FakeHub) -> None:
    name = "hf.co/tester/tiny-GGUF/tiny-Q8_0.gguf"
    assert pull_whole(pull_server, name).json() == {"status": "success"}
    listed = tags(pull_server)[f"{name}:latest"]
    data = hub.repos["tester/tiny-GGUF"].files["tiny-Q8_0.gguf"]
    assert listed["digest"] == hashlib.sha256(data).hexdigest()
    assert listed["size"] == len(data)


def test_a_split_model_is_pulled_whole_and_loads_from_its_first_part(
    pull_server: LiveServer, hub: FakeHub
) -> None:
    status, events, _ = pull_stream(pull_server, "hf.co/tester/split-GGUF:Q4_K_M")
    assert status == 200
    assert events[-1] == {"status": "success"}
    parts = hub.repos["tester/split-GGUF"].files
    assert len(parts) == 3
    digests = {e["digest"] for e in events if "digest" in e}
    assert digests == {f"sha256:{hashlib.sha256(d).hexdigest()}" for d in parts.values()}
    folder = repo_folder(pull_server, "tester/split-GGUF")
    for name, data in parts.items():
        assert (folder / name).read_bytes() == data
    record = show(pull_server, "hf.co/tester/split-GGUF:Q4_K_M")
    assert "FROM " + str(folder / "s-Q4_K_M-00001-of-00003.gguf") in record["modelfile"]
    # Every part's tensors count: the first part alone holds fewer than half of them.
    assert record["model_info"]["general.parameter_count"] == 129856
    assert tags(pull_server)["hf.co/tester/split-GGUF:Q4_K_M"]["size"] == sum(
        len(d) for d in parts.values()
    )
    reply = httpx.post(
        f"{pull_server.base_url}/v1/chat/completions",
        json={
            "model": "hf.co/tester/split-GGUF:Q4_K_M",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
        },
        timeout=60,
    )
    assert reply.status_code == 200, reply.text


def test_a_checksum_mismatch_fails_the_pull_and_removes_the_file(pull_server: LiveServer) -> None:
    name = "hf.co/tester/corrupt-GGUF:Q4_K_M"
    status, events, _ = pull_stream(pull_server, name)
    assert status == 200
    assert "sha256 mismatch" in events[-1]["error"]
    assert {"status": "success"} not in events
    (job,) = pulls(pull_server, name)
    assert job["status"] == "failed"
    assert "sha256 mismatch" in job["error"]
    assert name not in tags(pull_server)
    assert not (repo_folder(pull_server, "tester/corrupt-GGUF") / "c-Q4_K_M.gguf").exists()
    assert not any(p.name.startswith(job["files"][0]["sha256"]) for p in partials(pull_server))
    again = pull_whole(pull_server, name)
    assert again.status_code == 500
    assert "sha256 mismatch" in again.json()["error"]


def test_a_second_pull_of_the_same_reference_joins_the_first(
    pull_server: LiveServer, hub: FakeHub
) -> None:
    name = "hf.co/tester/join-GGUF:Q4_K_M"
    results: list[tuple[int, list[dict[str, Any]], httpx.Headers]] = []

    def run() -> None:
        results.append(pull_stream(pull_server, name))

    threads = [threading.Thread(target=run) for _ in range(2)]
    threads[0].start()
    while not hub.transfers_of("tester/join-GGUF"):
        threads[0].join(0.05)
    threads[1].start()
    for thread in threads:
        thread.join(60)
    assert [r[0] for r in results] == [200, 200]
    assert [r[1][-1] for r in results] == [{"status": "success"}] * 2
    assert results[0][2]["x-pull-id"] == results[1][2]["x-pull-id"]
    assert len(pulls(pull_server, name)) == 1
    (transfer,) = hub.transfers_of("tester/join-GGUF")
    assert transfer.finished and transfer.start == 0


def test_a_cancelled_pull_stops_and_says_so(pull_server: LiveServer, hub: FakeHub) -> None:
    name = "hf.co/tester/cancel-GGUF:Q4_K_M"
    outcome: list[tuple[int, list[dict[str, Any]], httpx.Headers]] = []
    thread = threading.Thread(target=lambda: outcome.append(pull_stream(pull_server, name)))
    thread.start()
    while hub.bytes_sent("tester/cancel-GGUF") < 50_000:
        thread.join(0.05)
    (job,) = pulls(pull_server, name)
    cancelled = httpx.post(f"{pull_server.base_url}/api/pulls/{job['id']}/cancel/", timeout=10)
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    thread.join(30)
    assert outcome[0][1][-1] == {"error": "cancelled"}
    assert name not in tags(pull_server)
    again = httpx.post(f"{pull_server.base_url}/api/pulls/{job['id']}/cancel/", timeout=10)
    assert again.status_code == 409
