"""docker-compose.yml, the Dockerfiles and .env.example, checked without Docker, in seconds
(tests/compose/ runs the stack for real, in make compose-test): the file parses; every service
runs a command that exists, with options its parser accepts; every variable it gives Herd is one
the code reads; the GPU worker gets a GPU and the CUDA build; the processes share the models.
``herd web``, the web service's command, is run for real against a broker it did not start."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from celery.bin.base import CLIContext
from celery.bin.celery import celery as celery_cli
from django.core.management import get_commands, load_command_class

from project.cli import ALIASES
from tests.live import REPO, LiveServer, free_port

CODE = ["project", "models_app", "inference_app", "workers", "accounts"]
# Variables read by libraries Herd uses rather than by its own code, each checked below to be
# read by that library.
LIBRARY_VARIABLES = {"HF_TOKEN": "huggingface_hub"}
_READS = re.compile(
    r"""(?:env\.\w+|environ\.get|environ\.setdefault|getenv|parsed)\(\s*["']([A-Z][A-Z0-9_]*)["']"""
    r"""|environ\[\s*["']([A-Z][A-Z0-9_]*)["']\s*\]"""
)
_INTERPOLATED = re.compile(r"\$\{([A-Z][A-Z0-9_]*)")


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((REPO / "docker-compose.yml").read_text()))


def herd_services() -> dict[str, dict[str, Any]]:
    """The services that run Herd's own image (the others are valkey and postgres)."""
    return {name: service for name, service in compose()["services"].items() if "build" in service}


def variables_the_code_reads() -> set[str]:
    names: set[str] = set()
    for package in CODE:
        for source in (REPO / package).rglob("*.py"):
            for match in _READS.finditer(source.read_text()):
                names.add(match.group(1) or match.group(2))
    return names


def library_reads(variable: str, module: str) -> bool:
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.submodule_search_locations
    root = Path(next(iter(spec.submodule_search_locations)))
    return any(f'"{variable}"' in p.read_text() for p in root.rglob("*.py"))


def test_it_has_the_services_of_a_team_deployment() -> None:
    services = compose()["services"]
    assert set(services) == {"valkey", "postgres", "web", "worker-cpu", "worker-gpu", "beat"}
    assert services["valkey"]["image"].startswith("valkey/valkey:")
    assert services["postgres"]["image"].startswith("postgres:")
    assert set(herd_services()) == {"web", "worker-cpu", "worker-gpu", "beat"}


def test_every_herd_command_exists_and_accepts_its_options() -> None:
    commands = get_commands()
    for name, service in herd_services().items():
        argv = service["command"]
        if argv[0] == "celery":
            continue
        assert argv[0] == "herd", name
        subcommand = ALIASES.get(argv[1], argv[1])
        assert subcommand in commands, f"{name}: no command herd {argv[1]}"
        command = load_command_class(commands[subcommand], subcommand)
        parser = command.create_parser("herd", subcommand)
        parser.parse_args(argv[2:])  # exits (fails the test) on an unknown option


def test_beat_is_a_celery_command_of_herds_app_with_options_it_accepts() -> None:
    from project.celery import app

    argv = compose()["services"]["beat"]["command"]
    assert argv[:3] == ["celery", "-A", "project"]
    assert argv[3] in celery_cli.commands
    context = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    parsed = celery_cli.commands[argv[3]].make_context(argv[3], argv[4:], obj=context)
    # Its schedule file lies on the shared volume, which exists before beat starts.
    assert Path(parsed.params["schedule"]).parent == Path("/data")
    assert "herd.expire_batches" in {e["task"] for e in app.conf.beat_schedule.values()}


def test_every_variable_given_to_herd_is_one_the_code_reads() -> None:
    read = variables_the_code_reads()
    for library_variable, module in LIBRARY_VARIABLES.items():
        assert library_reads(library_variable, module), library_variable
    for name, service in herd_services().items():
        for variable in service["environment"]:
            assert variable in read or variable in LIBRARY_VARIABLES, (
                f"{name} sets {variable}, which nothing reads"
            )


def test_the_variables_herd_needs_in_a_team_deployment_are_set() -> None:
    for name, service in herd_services().items():
        environment = service["environment"]
        assert environment["REDIS_URL"] == "redis://valkey:6379/0", name
        assert environment["DATABASE_URL"].startswith("postgres://herd:"), name
        assert environment["DATABASE_URL"].endswith("@postgres:5432/herd"), name
        assert "SECRET_KEY" in environment, name
    web = compose()["services"]["web"]
    assert web["environment"]["HERD_HOST"] == "0.0.0.0:11434"
    assert web["ports"] == ["${HERD_BIND:-0.0.0.0}:${HERD_PORT:-11434}:11434"]


def test_every_herd_process_shares_the_models_volume_at_herd_home() -> None:
    for name, service in herd_services().items():
        assert service["environment"]["HERD_HOME"] == "/data", name
        assert "herd-data:/data" in service["volumes"], name
    assert "herd-data" in compose()["volumes"]


def test_the_gpu_worker_reserves_an_nvidia_gpu_and_runs_the_cuda_build() -> None:
    gpu = compose()["services"]["worker-gpu"]
    assert gpu["build"]["dockerfile"] == "Dockerfile.cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert gpu["command"][2:4] == ["--device", "cuda:0"]
    cuda = (REPO / "Dockerfile.cuda").read_text()
    assert "-DGGML_CUDA=on" in cuda
    assert re.search(r"^FROM nvidia/cuda:\S+-devel-", cuda, re.M)
    assert compose()["services"]["worker-cpu"]["command"][2:4] == ["--device", "cpu"]


def test_the_images_build_the_llama_cpp_python_that_pyproject_pins() -> None:
    pin = re.search(r'"llama-cpp-python==([^"]+)"', (REPO / "pyproject.toml").read_text())
    assert pin is not None
    for dockerfile in ("Dockerfile", "Dockerfile.cuda"):
        text = (REPO / dockerfile).read_text()
        assert re.search(
            rf"^ARG LLAMA_CPP_PYTHON_VERSION={re.escape(pin.group(1))}\b", text, re.M
        ), dockerfile
        assert "pip install -e /app" in text, dockerfile


def test_the_cpu_image_builds_on_debians_python_from_a_base_debootstrap_can_make() -> None:
    text = (REPO / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=debian:bookworm-slim\n" in text
    assert re.findall(r"^FROM (\S+)", text, re.M) == ["${BASE_IMAGE}", "${BASE_IMAGE}"]
    assert "python3-venv" in text and "python3 -m venv /venv" in text


def test_env_example_documents_what_compose_asks_for_and_nothing_else() -> None:
    text = (REPO / "docker-compose.yml").read_text()
    interpolated = set(_INTERPOLATED.findall(text))
    example = (REPO / ".env.example").read_text().splitlines()
    listed = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert interpolated <= listed, f"not in .env.example: {interpolated - listed}"
    assert listed <= interpolated, f"not used by docker-compose.yml: {listed - interpolated}"
    # Each setting has a comment just above it (or above the group it belongs to).
    for index, line in enumerate(example):
        if line and not line.startswith("#"):
            above = example[:index]
            assert any(a.startswith("#") for a in above[-3:]), line
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    assert required == {"SECRET_KEY", "POSTGRES_PASSWORD"}


@pytest.mark.live  # a herd command in a subprocess
def test_herd_web_refuses_to_start_without_a_broker(tmp_path: Path) -> None:
    env = _env(tmp_path, free_port())
    env.pop("REDIS_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "project.cli", "web"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "herd web needs REDIS_URL" in result.stderr


@pytest.mark.live
def test_herd_web_migrates_and_serves_with_a_broker_it_did_not_start(
    tmp_path: Path, server: LiveServer
) -> None:
    port = free_port()
    env = _env(tmp_path, port)
    env["REDIS_URL"] = server.redis_url
    process = subprocess.Popen(
        [sys.executable, "-m", "project.cli", "web"],
        env=env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                probe = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.HTTPError:
                assert process.poll() is None, process.stdout and process.stdout.read()
                assert time.monotonic() < deadline, "herd web did not answer"
                time.sleep(0.2)
        assert probe.status_code == 200 and probe.text == "Ollama is running"
        # It migrated its (empty) database: the model list answers, with nothing in it.
        assert httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10).json()["data"] == []
        login = httpx.get(f"http://127.0.0.1:{port}/ui/login/", timeout=10)
        assert login.status_code == 200 and "Sign in" in login.text
        css = httpx.get(f"http://127.0.0.1:{port}/static/herd.css", timeout=10)
        assert css.status_code == 200 and css.headers["content-type"] == "text/css"
    finally:
        process.terminate()
        process.wait(30)


def _env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERD_")}
    env.pop("DATABASE_URL", None)
    env.update(
        {
            "HERD_HOME": str(tmp_path / "home"),
            "HERD_HOST": f"127.0.0.1:{port}",
            "HERD_NAMESPACE": f"web-{port}",
        }
    )
    return env
