"""docker-compose.yml run for real: the images built, the stack up with an .env this test
writes, a key made with ``herd keys create`` in the web container, a model imported into the
shared volume, a chat and a batch through the official openai client; the worker's process
killed, as a crash would, and a request served once Docker has restarted the container; the
whole stack taken down (its volumes kept) and brought up again, with the model, the key and the
finished batch still there; then everything removed.

Run by ``make compose-test`` (pytest --compose); the other passes skip it. Where Docker cannot
run, it skips and says why. The model is the tiny GGUF of tests/tiny_gguf.py (random weights,
real tokens, loaded in milliseconds): what is under test is the deployment, not the answer.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from openai import OpenAI
from openai.types import Batch

from tests.compose import images
from tests.compose.images import REPO, DockerUnavailable, log, run
from tests.live import free_port
from tests.tiny_gguf import write_tiny_gguf

pytestmark = [pytest.mark.compose, pytest.mark.timeout(1800)]

PROJECT = "herd-compose-test"
WORKER = "cpu@compose"
MODEL = "tiny"
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float) -> T:
    """The first truthy value ``probe`` returns, asked every half second until ``timeout``
    seconds have passed (then the test fails, naming ``what``)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        assert time.monotonic() < deadline, f"waited {timeout:.0f} s for {what}"
        time.sleep(0.5)


@dataclass
class Stack:
    """The compose project under test: its command line (files, .env, project name) and the
    loopback port web is published on."""

    compose: list[str]
    port: int

    def __call__(self, *args: str, timeout: float = 300) -> str:
        return run([*self.compose, *args], timeout=timeout).stdout

    def container(self, service: str) -> str:
        container = self("ps", "-q", service).strip()
        assert container, f"no {service} container"
        return container

    def exec(self, service: str, *argv: str, timeout: float = 120) -> str:
        return self("exec", "-T", service, *argv, timeout=timeout)

    def state(self, service: str) -> dict[str, Any]:
        inspected = run(["docker", "inspect", self.container(service)], timeout=60).stdout
        state: dict[str, Any] = json.loads(inspected)[0]["State"]
        state["RestartCount"] = json.loads(inspected)[0]["RestartCount"]
        return state

    def up(self) -> None:
        log("docker compose up")
        self("up", "-d", timeout=600)
        wait_for("web to be healthy", lambda: self._healthy("web"), timeout=300)

    def _healthy(self, service: str) -> bool:
        state = self.state(service)
        assert state["Status"] in ("created", "running", "restarting"), state
        return bool(state.get("Health", {}).get("Status") == "healthy")

    def published_addresses(self) -> set[str]:
        """The host addresses any container of the project publishes a port on."""
        addresses: set[str] = set()
        for container in self("ps", "-q").split():
            inspected = json.loads(run(["docker", "inspect", container], timeout=60).stdout)
            for bindings in (inspected[0]["NetworkSettings"]["Ports"] or {}).values():
                addresses.update(binding["HostIp"] for binding in bindings or ())
        return addresses

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    try:
        daemon = images.start_daemon()
    except DockerUnavailable as exc:
        pytest.skip(f"Docker cannot run here, so the compose stack is not tested: {exc}")
    try:
        try:
            compose = images.compose_command()
            images.prepare()
        except DockerUnavailable as exc:
            pytest.skip(f"the compose stack cannot be built here: {exc}")
        port = free_port()
        env_file = tmp_path_factory.mktemp("compose") / ".env"
        env_file.write_text(
            f"SECRET_KEY={secrets.token_urlsafe(50)}\n"
            f"POSTGRES_PASSWORD={secrets.token_urlsafe(24)}\n"
            f"HERD_PORT={port}\n"
            "HERD_BIND=127.0.0.1\n"
            "HERD_ALLOWED_HOSTS=127.0.0.1,localhost\n"
            "HERD_AUTH=required\n"
            "HERD_CPU_MEMORY_BUDGET=2GiB\n"
        )
        files = ["-f", str(REPO / "docker-compose.yml")]
        files += ["-f", str(REPO / "tests/compose/docker-compose.test.yml")]
        command = [*compose, "-p", PROJECT, *files, "--env-file", str(env_file)]
        started = Stack(command, port)
        started("down", "-v", "--remove-orphans", timeout=300)  # what a killed run left
        try:
            with images.serving(images.wheels()) as wheels:
                log("building Herd's image (docker compose build web)")
                build_started = time.monotonic()
                run(
                    [*command, "build", "web"],
                    timeout=1500,
                    env_overrides={"HERD_TEST_WHEELS": wheels},
                )
                log(f"built in {time.monotonic() - build_started:.0f} s")
            yield started
        finally:
            logs = run([*command, "logs", "--no-color"], timeout=120, check=False).stdout
            (images.CACHE / "stack.log").write_text(logs)
            log(f"the stack's logs: {images.CACHE / 'stack.log'}")
            started("down", "-v", "--remove-orphans", timeout=300)
    finally:
        daemon.stop()


def client(stack: Stack, key: str) -> OpenAI:
    return OpenAI(base_url=stack.url("/v1"), api_key=key, timeout=120, max_retries=0)


def worker_ready(stack: Stack, key: str) -> bool:
    status = httpx.get(
        stack.url("/v1/status"), headers={"Authorization": f"Bearer {key}"}, timeout=10
    )
    status.raise_for_status()
    return any(worker["name"] == WORKER for worker in status.json()["workers"])


def chat(stack: Stack, key: str) -> None:
    """A chat answered by the worker: tokens generated and counted."""
    reply = client(stack, key).chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": "Name three birds."}], max_tokens=8
    )
    assert reply.choices[0].message.content
    assert reply.usage is not None and reply.usage.completion_tokens > 0
    assert reply.choices[0].finish_reason in ("stop", "length")


def test_the_compose_stack_serves_survives_a_killed_worker_and_a_restart(
    stack: Stack, tmp_path: Path
) -> None:
    stack.up()
    # Published on the loopback address alone, and nothing served without a key.
    assert stack.published_addresses() == {"127.0.0.1"}
    refused = httpx.get(stack.url("/v1/models"), timeout=10)
    assert refused.status_code == 401, refused.text

    key = stack.exec("web", "herd", "keys", "create", "compose-test", "--user", "compose")
    key = key.strip().splitlines()[-1]
    # The model goes onto the shared volume through web; the worker loads it from there.
    model = write_tiny_gguf(tmp_path / "tiny.gguf", n_ctx=4096)
    with model.open("rb") as source:
        run(
            [
                "docker",
                "exec",
                "-i",
                stack.container("web"),
                "sh",
                "-c",
                "mkdir -p /data/models && cat > /data/models/tiny.gguf",
            ],
            timeout=120,
            stdin=source,
        )
    stack.exec("web", "herd", "import", MODEL, "/data/models/tiny.gguf")
    wait_for("the worker to register", lambda: worker_ready(stack, key), timeout=300)
    chat(stack, key)

    # A batch of two lines, finished before the restart.
    openai = client(stack, key)
    lines = [
        {
            "custom_id": f"line-{n}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": MODEL,
                "messages": [{"role": "user", "content": f"Count {n}"}],
                "max_tokens": 4,
            },
        }
        for n in (1, 2)
    ]
    upload = openai.files.create(
        file=("lines.jsonl", "\n".join(json.dumps(line) for line in lines).encode()),
        purpose="batch",
    )
    batch = openai.batches.create(
        input_file_id=upload.id, endpoint="/v1/chat/completions", completion_window="24h"
    )

    def finished() -> Batch | None:
        found = openai.batches.retrieve(batch.id)
        return found if found.status == "completed" else None

    done = wait_for("the batch to complete", finished, timeout=300)
    assert done.request_counts is not None and done.request_counts.completed == 2

    # The worker's process killed, as the kernel's OOM killer or a crash would, Docker starts
    # the container again (restart: unless-stopped) and it serves. (``docker kill`` would not
    # do: Docker counts it as a stop by hand, and restarts no container stopped so.)
    before = stack.state("worker-cpu")
    log(f"killing the worker's process ({before['Pid']})")
    os.kill(before["Pid"], signal.SIGKILL)
    wait_for(
        "Docker to restart the worker",
        lambda: (
            (s := stack.state("worker-cpu"))["Running"]
            and s["RestartCount"] > before["RestartCount"]
        ),
        timeout=120,
    )
    chat(stack, key)

    # Down and up again, the volumes kept: the model, the key and the batch are still there.
    log("docker compose down (volumes kept)")
    stack("down", timeout=300)
    stack.up()
    openai = client(stack, key)
    assert f"{MODEL}:latest" in {m.id for m in openai.models.list()}
    kept = openai.batches.retrieve(batch.id)
    assert kept.status == "completed" and kept.output_file_id
    output = openai.files.content(kept.output_file_id).text.splitlines()
    assert sorted(json.loads(line)["custom_id"] for line in output) == ["line-1", "line-2"]
    wait_for("the worker to register again", lambda: worker_ready(stack, key), timeout=300)
    chat(stack, key)
