"""The real coding agents against a live Herd, run as a user runs them, non-interactively:
Codex CLI (``codex exec`` with its default tools, then ``exec resume --last``; and its Ollama
path, ``--oss``, which gates on ``/api/version``) and Claude Code (``claude -p``), each
started by ``herd launch``; the OpenAI Agents SDK (``Runner.run_sync``, a tool round trip over
each of its two model APIs); and aider (``aider --message``) over its OpenAI and ``ollama_chat``
providers.

``make test`` installs the agents with npm into ``.cache/agents``, and aider into a virtualenv
of its own there (it pins its own versions of the libraries Herd uses); tests skip, saying so,
where they are not installed. The model is the tiny test model with a stop string at the
first space or newline: an answer is a word or less, so a run tests the protocol, not the
model. Each run must exit 0, report success in the agent's own output, and leave request-log
lines on the server, each with status 200."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from tests.live import REPO, LiveServer, live_fixture, make_server
from tests.tiny_gguf import write_tiny_gguf

AGENTS_BIN = REPO / ".cache" / "agents" / "node_modules" / ".bin"
AIDER = REPO / ".cache" / "agents" / "aider" / "bin" / "aider"
MODEL = "agent-stop"
# The agents' system prompts and tools are tens of thousands of tokens.
AGENT_CONTEXT = 65536
REQUEST_LINE = re.compile(r" herd\.requests: (\S+) (\S+) (\d{3}) ")
RUN_TIMEOUT = 400
Lines = list[tuple[str, str, str]]
pytestmark = pytest.mark.timeout(900)


def installed(agent: str) -> Path:
    program = AGENTS_BIN / agent
    if not program.exists():
        pytest.skip(
            f"{agent} is not installed in {AGENTS_BIN.parent.parent} "
            "(make test installs it with npm, where npm exists)"
        )
    return program


@live_fixture(scope="module")
def agent_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    root = tmp_path_factory.mktemp("agents")
    gguf = write_tiny_gguf(root / "tiny.gguf", n_ctx=AGENT_CONTEXT)
    live = make_server(root, {"tiny": gguf}, {})
    live.start()
    made = httpx.post(
        f"{live.base_url}/api/create",
        json={
            "model": MODEL,
            "from": "tiny",
            "stream": False,
            "parameters": {"num_ctx": AGENT_CONTEXT, "num_predict": 64, "stop": [" ", "\n"]},
        },
        timeout=60,
    )
    assert made.status_code == 200, made.text
    yield live
    live.stop()


class AgentRun:
    """One agent run in a home of its own, and the request-log lines it left."""

    def __init__(self, server: LiveServer, home: Path) -> None:
        self.server = server
        self.home = home
        self.workdir = home / "project"
        self.workdir.mkdir(parents=True, exist_ok=True)
        (home / ".codex").mkdir(exist_ok=True)

    def environ(self, **more: str) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HERD_", "CODEX_"))}
        environ.update(
            {
                "HOME": str(self.home),
                "CODEX_HOME": str(self.home / ".codex"),
                "CLAUDE_CONFIG_DIR": str(self.home / ".claude"),
                "PATH": f"{AGENTS_BIN}:{Path(sys.executable).parent}:{environ.get('PATH', '')}",
                "HERD_HOST": self.server.base_url.removeprefix("http://"),
                "HERD_HOME": str(self.home / "herd"),
                # No update checks or telemetry: nothing here reaches the internet.
                "DISABLE_AUTOUPDATER": "1",
                "DISABLE_TELEMETRY": "1",
                "DISABLE_ERROR_REPORTING": "1",
                "NO_UPDATE_NOTIFIER": "1",
                **more,
            }
        )
        return environ

    def run(self, argv: list[str], **env: str) -> tuple[subprocess.CompletedProcess[str], Lines]:
        """Run ``argv``; return it and the request-log lines written meanwhile."""
        before = len(self.server.log_path.read_bytes())
        done = subprocess.run(
            argv,
            env=self.environ(**env),
            cwd=self.workdir,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        written = self.server.log_path.read_bytes()[before:].decode(errors="replace")
        return done, request_lines(written)

    def launch(self, agent: str, *args: str) -> tuple[subprocess.CompletedProcess[str], Lines]:
        herd = [sys.executable, "-m", "project.cli", "launch", agent, "--model", MODEL, "--"]
        return self.run([*herd, *args], PYTHONPATH=str(REPO))


def request_lines(text: str) -> Lines:
    """The request log's (method, path, status) in ``text``."""
    return [(m[1], m[2], m[3]) for m in REQUEST_LINE.finditer(text)]


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def assert_all_ok(lines: Lines, path: str) -> None:
    assert [line for line in lines if line[1] == path], f"no request to {path}: {lines}"
    assert all(status == "200" for _, _, status in lines), lines


def test_codex_exec_with_its_default_tools_and_resume(
    agent_server: LiveServer, tmp_path: Path
) -> None:
    installed("codex")
    run = AgentRun(agent_server, tmp_path)
    done, lines = run.launch("codex", "exec", "--json", "--skip-git-repo-check", "say hello")
    assert done.returncode == 0, done.stdout + done.stderr
    events = json_lines(done.stdout)
    assert "turn.completed" in [e["type"] for e in events], done.stdout
    assert "turn.failed" not in [e["type"] for e in events]
    assert_all_ok(lines, "/v1/responses")

    done, lines = run.launch(
        "codex", "exec", "--json", "--skip-git-repo-check", "resume", "--last", "and again"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "turn.completed" in [e["type"] for e in json_lines(done.stdout)], done.stdout
    assert_all_ok(lines, "/v1/responses")


def test_codex_oss_path_passes_its_ollama_version_check(
    agent_server: LiveServer, tmp_path: Path
) -> None:
    codex = installed("codex")
    run = AgentRun(agent_server, tmp_path)
    done, lines = run.run(
        [
            str(codex),
            "exec",
            "--json",
            "--oss",
            "--local-provider",
            "ollama",
            "-m",
            f"{MODEL}:latest",
            "--skip-git-repo-check",
            "say hello",
        ],
        CODEX_OSS_BASE_URL=f"{agent_server.base_url}/v1",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "turn.completed" in [e["type"] for e in json_lines(done.stdout)], done.stdout
    assert ("GET", "/api/version", "200") in lines
    assert_all_ok(lines, "/v1/responses")


def test_claude_code_print_mode(agent_server: LiveServer, tmp_path: Path) -> None:
    installed("claude")
    run = AgentRun(agent_server, tmp_path)
    done, lines = run.launch("claude", "-p", "say hello", "--output-format", "json")
    assert done.returncode == 0, done.stdout + done.stderr
    (result,) = [e for e in json_lines(done.stdout) if e.get("type") == "result"]
    assert (result["subtype"], result["is_error"]) == ("success", False), result
    assert_all_ok(lines, "/v1/messages")


# The OpenAI Agents SDK, in this process: its Responses and its Chat Completions model, each
# with one tool round trip (a forced call, the tool's output back to the model, its answer).
# Stop letters that the call's text never holds (the tool's name, its JSON, a city of the
# enum), so that the answer after the call stops early and the call is whole.
SDK_MODEL = "agent-letters"
SDK_STOPS = ["b", "d", "f", "j", "k", "p", "v", "x", "z"]


@pytest.mark.parametrize("api", ["responses", "chat"])
def test_the_openai_agents_sdk_makes_a_tool_round_trip(agent_server: LiveServer, api: str) -> None:
    agents = pytest.importorskip("agents", reason="openai-agents is in the dev extras")
    from openai import AsyncOpenAI

    made = httpx.post(
        f"{agent_server.base_url}/api/create",
        json={
            "model": SDK_MODEL,
            "from": "tiny",
            "stream": False,
            "parameters": {"num_predict": 64, "stop": SDK_STOPS},
        },
        timeout=60,
    )
    assert made.status_code == 200, made.text
    agents.set_tracing_disabled(True)  # traces would go to OpenAI's servers
    asked: list[str] = []

    @agents.function_tool
    def get_weather(city: Literal["Paris", "Oslo"]) -> str:
        """The weather in a city."""
        asked.append(city)
        return f"Sunny in {city}"

    client = AsyncOpenAI(base_url=f"{agent_server.base_url}/v1", api_key="unused", max_retries=0)
    model = (
        agents.OpenAIResponsesModel(SDK_MODEL, client)
        if api == "responses"
        else agents.OpenAIChatCompletionsModel(SDK_MODEL, client)
    )
    agent = agents.Agent(
        name="weather",
        instructions="Answer with the weather tool.",
        tools=[get_weather],
        model=model,
        model_settings=agents.ModelSettings(tool_choice="get_weather"),
    )
    before = len(agent_server.log_path.read_bytes())
    result = agents.Runner.run_sync(agent, "Weather in Paris?", max_turns=3)
    kinds = [type(item).__name__ for item in result.new_items]
    assert kinds == ["ToolCallItem", "ToolCallOutputItem", "MessageOutputItem"], kinds
    assert len(asked) == 1 and asked[0] in ("Paris", "Oslo")
    assert result.new_items[1].output == f"Sunny in {asked[0]}"
    assert isinstance(result.final_output, str)
    written = agent_server.log_path.read_bytes()[before:].decode(errors="replace")
    lines = request_lines(written)
    path = "/v1/responses" if api == "responses" else "/v1/chat/completions"
    assert [line[1] for line in lines].count(path) == 2, lines
    assert_all_ok(lines, path)


# The README's agent section, as written: its Codex configuration is what `herd launch`
# writes, and its `herd launch codex ... -- exec` line runs (in a git checkout, where Codex
# works), with the demo model's name on the test model.
README_SECTION = "### Coding agents: Codex CLI, Claude Code, opencode"
README_MODEL = "smollm2:135m"


def readme_blocks(fence: str) -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text[text.index(README_SECTION) :]
    section = section[: section.index("\n### ", len(README_SECTION))]
    blocks = section.split("```")
    return [block.removeprefix(fence) for block in blocks[1::2] if block.startswith(fence)]


def test_the_readmes_agent_section_works_as_written(
    agent_server: LiveServer, tmp_path: Path
) -> None:
    installed("codex")
    (toml,) = readme_blocks("toml")
    run = AgentRun(agent_server, tmp_path)
    shown, _ = run.run(
        [
            sys.executable,
            "-m",
            "project.cli",
            "launch",
            "codex",
            "--config",
            "--model",
            README_MODEL,
        ],
        PYTHONPATH=str(REPO),
        HERD_HOST="127.0.0.1:11434",  # make run's address, as the README shows it
    )
    assert shown.returncode == 0, shown.stderr
    assert tomllib.loads(shown.stdout) == tomllib.loads(toml)

    copied = httpx.post(
        f"{agent_server.base_url}/api/copy",
        json={"source": MODEL, "destination": README_MODEL},
        timeout=30,
    )
    assert copied.status_code == 200, copied.text
    subprocess.run(["git", "init", "-q", str(run.workdir)], check=True, timeout=30)
    (sh,) = readme_blocks("sh")
    commands = [line.split("#")[0].strip() for line in sh.splitlines()]
    (codex_exec,) = [c for c in commands if c.startswith("herd launch codex") and " exec " in c]
    argv = shlex.split(codex_exec)
    done, lines = run.run(
        [sys.executable, "-m", "project.cli", *argv[1:]],
        PYTHONPATH=str(REPO),
        HERD_API_KEY="any",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_all_ok(lines, "/v1/responses")


@pytest.mark.parametrize(
    ("provider", "path"), [("openai", "/v1/chat/completions"), ("ollama_chat", "/api/chat")]
)
def test_aider_answers_a_message_over_each_provider(
    agent_server: LiveServer, tmp_path: Path, provider: str, path: str
) -> None:
    if not AIDER.exists():
        pytest.skip(f"aider is not installed at {AIDER} (make test installs it)")
    run = AgentRun(agent_server, tmp_path)
    done, lines = run.run(
        [
            str(AIDER),
            "--model",
            f"{provider}/{MODEL}",
            "--message",
            "say hello",
            "--no-git",
            "--yes-always",
            "--no-check-update",
            "--no-analytics",
            "--no-show-model-warnings",
            "--no-pretty",
        ],
        OPENAI_API_BASE=f"{agent_server.base_url}/v1",
        OPENAI_API_KEY="unused",
        OLLAMA_API_BASE=agent_server.base_url,
        # litellm's model list from its own package: nothing here reaches the internet.
        LITELLM_LOCAL_MODEL_COST_MAP="True",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # aider's own account of the exchange, printed once the model has answered.
    assert re.search(r"Tokens: [\d.k]+ sent, [\d.k]+ received", done.stdout), done.stdout
    assert_all_ok(lines, path)
