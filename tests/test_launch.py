"""``herd launch``: the settings that point Codex CLI, Claude Code and opencode at this Herd,
printed and written into each agent's own config beside what the file already holds. (Starting
the agents with them is tested with the real agents, in tests/test_agents.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.live import REPO

HOST = "127.0.0.1:18734"


def launch(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("HERD_", "CODEX_"))}
    environ.update(
        {
            "HERD_HOME": str(tmp_path / "herd"),
            "HERD_HOST": HOST,
            "HOME": str(tmp_path / "home"),
            "XDG_CONFIG_HOME": str(tmp_path / "home" / ".config"),
            "PATH": os.path.dirname(sys.executable),  # no agent on it
            **env,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "project.cli", "launch", *args],
        env=environ,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_codexs_settings_are_a_responses_provider_and_a_profile(tmp_path: Path) -> None:
    shown = launch(tmp_path, "codex", "--config", "--model", "coder:7b", "--key", "sk-1")
    assert shown.returncode == 0, shown.stderr
    config = tomllib.loads(shown.stdout)
    assert config["model_providers"]["herd"] == {
        "name": "Herd",
        "base_url": f"http://{HOST}/v1",
        "wire_api": "responses",
        "env_key": "HERD_API_KEY",
    }
    assert config["profiles"]["herd"] == {"model": "coder:7b", "model_provider": "herd"}


def test_writing_codexs_config_keeps_what_it_held_and_replaces_herds_tables(
    tmp_path: Path,
) -> None:
    codex_home = tmp_path / "codex"
    codex_home.mkdir()
    (codex_home / "config.toml").write_text(
        'model = "gpt-5"\n\n[model_providers.herd]\nname = "old"\nbase_url = "http://x/v1"\n\n'
        '[mcp_servers.docs]\ncommand = "docs-server"\n'
    )
    written = launch(
        tmp_path, "codex", "--write", "--model", "tiny", "--key", "k", CODEX_HOME=str(codex_home)
    )
    assert written.returncode == 0, written.stderr
    assert "codex --profile herd" in written.stdout
    config = tomllib.loads((codex_home / "config.toml").read_text())
    assert config["model"] == "gpt-5"
    assert config["mcp_servers"]["docs"]["command"] == "docs-server"
    assert config["model_providers"]["herd"]["base_url"] == f"http://{HOST}/v1"
    assert config["model_providers"]["herd"]["wire_api"] == "responses"
    assert config["profiles"]["herd"]["model"] == "tiny"


def test_claude_codes_settings_are_its_environment(tmp_path: Path) -> None:
    shown = launch(tmp_path, "claude", "--config", "--model", "tiny", "--key", "sk-2")
    assert shown.returncode == 0, shown.stderr
    variables = dict(
        line.removeprefix("export ").split("=", 1) for line in shown.stdout.splitlines()
    )
    assert variables["ANTHROPIC_BASE_URL"] == f"http://{HOST}"
    assert variables["ANTHROPIC_AUTH_TOKEN"] == "sk-2"
    assert variables["ANTHROPIC_MODEL"] == variables["ANTHROPIC_DEFAULT_HAIKU_MODEL"] == "tiny"

    settings = tmp_path / "home" / ".claude" / "settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps({"theme": "dark", "env": {"EDITOR": "vi"}}))
    written = launch(tmp_path, "claude", "--write", "--model", "tiny", "--key", "sk-2")
    assert written.returncode == 0, written.stderr
    saved = json.loads(settings.read_text())
    assert saved["theme"] == "dark" and saved["env"]["EDITOR"] == "vi"
    assert saved["env"]["ANTHROPIC_BASE_URL"] == f"http://{HOST}"


def test_opencodes_settings_are_a_provider_of_the_chat_api(tmp_path: Path) -> None:
    written = launch(tmp_path, "opencode", "--write", "--model", "tiny", "--key", "sk-3")
    assert written.returncode == 0, written.stderr
    config = json.loads((tmp_path / "home" / ".config" / "opencode" / "opencode.json").read_text())
    assert config["model"] == "herd/tiny"
    provider = config["provider"]["herd"]
    assert provider["npm"] == "@ai-sdk/openai-compatible"
    assert provider["options"] == {"baseURL": f"http://{HOST}/v1", "apiKey": "sk-3"}
    assert "tiny" in provider["models"]


def test_an_agent_that_is_not_installed_gets_its_settings_and_how_to_install_it(
    tmp_path: Path,
) -> None:
    shown = launch(tmp_path, "codex", "--model", "tiny")
    assert shown.returncode == 0, shown.stderr
    assert "npm install -g @openai/codex" in shown.stderr
    assert tomllib.loads(shown.stdout)["profiles"]["herd"]["model"] == "tiny"


def test_a_keyed_herd_needs_a_key(tmp_path: Path) -> None:
    refused = launch(tmp_path, "claude", "--config", "--model", "tiny", HERD_AUTH="required")
    assert refused.returncode != 0
    assert "HERD_API_KEY" in refused.stderr
