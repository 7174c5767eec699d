"""What points a coding agent at this Herd, as ``ollama launch`` does for Ollama: for each
agent, the settings it reads (its own config file's shape, or its environment), made from the
server's address, a model and a key. ``herd launch`` (the command) prints them, writes them
into the agent's config, or starts the agent with them.

- Codex CLI speaks the Responses API: a ``[model_providers.herd]`` table with ``wire_api =
  "responses"`` and a ``[profiles.herd]`` that selects it and the model (``codex --profile
  herd``); started, the same settings go on its command line (``-c``), and no file is touched.
- Claude Code speaks the Messages API and reads its server, key and models from the
  environment (``ANTHROPIC_BASE_URL``...), or from the ``env`` of its ``settings.json``.
- opencode reads a provider of OpenAI's chat API (``@ai-sdk/openai-compatible``) from its
  ``opencode.json``.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AGENTS = ("codex", "claude", "opencode")
# Where each agent is installed from, for the message when it is not.
INSTALL = {
    "codex": "npm install -g @openai/codex",
    "claude": "npm install -g @anthropic-ai/claude-code",
    "opencode": "npm install -g opencode-ai",
}
PROVIDER = "herd"
KEY_VARIABLE = "HERD_API_KEY"


@dataclass
class Target:
    """The Herd an agent is pointed at: ``base_url`` (``http://host:port``), a model name, and
    the key the agent sends."""

    base_url: str
    model: str
    key: str


def codex_provider(target: Target) -> dict[str, Any]:
    return {
        "name": "Herd",
        "base_url": f"{target.base_url}/v1",
        "wire_api": "responses",
        "env_key": KEY_VARIABLE,
    }


def _toml_value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)  # a TOML basic string is a JSON string


def codex_toml(target: Target) -> str:
    """The tables Codex's ``config.toml`` gets."""
    provider = "\n".join(f"{k} = {_toml_value(v)}" for k, v in codex_provider(target).items())
    return (
        f"[model_providers.{PROVIDER}]\n{provider}\n\n"
        f"[profiles.{PROVIDER}]\n"
        f"model = {_toml_value(target.model)}\n"
        f"model_provider = {_toml_value(PROVIDER)}\n"
    )


def codex_arguments(target: Target) -> list[str]:
    """Codex's command-line overrides with the same settings (no file written)."""
    return [
        "-c",
        f"model_providers.{PROVIDER}={_toml_value(codex_provider(target))}",
        "-c",
        f"model_provider={PROVIDER}",
        "-c",
        f"model={_toml_value(target.model)}",
    ]


def merged_codex_config(existing: str, target: Target) -> str:
    """``existing`` (a ``config.toml``) without its Herd tables, then Herd's tables."""
    kept: list[str] = []
    skipping = False
    ours = re.compile(rf"^\[(model_providers|profiles)\.{PROVIDER}\]\s*$")
    for line in existing.splitlines():
        if line.startswith("["):
            skipping = bool(ours.match(line.strip()))
        if not skipping:
            kept.append(line)
    head = "\n".join(kept).rstrip()
    return (head + "\n\n" if head else "") + codex_toml(target)


def claude_environment(target: Target) -> dict[str, str]:
    """Claude Code's variables: the server, the key (sent as a bearer token), and the model
    for every tier it asks for, so that no request names a model Herd does not have."""
    return {
        "ANTHROPIC_BASE_URL": target.base_url,
        "ANTHROPIC_AUTH_TOKEN": target.key,
        "ANTHROPIC_MODEL": target.model,
        "ANTHROPIC_DEFAULT_OPUS_MODEL": target.model,
        "ANTHROPIC_DEFAULT_SONNET_MODEL": target.model,
        "ANTHROPIC_DEFAULT_HAIKU_MODEL": target.model,
        "ANTHROPIC_SMALL_FAST_MODEL": target.model,
        # Nothing of Claude Code's own traffic (telemetry, updates) goes out from here.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def merged_claude_settings(existing: dict[str, Any], target: Target) -> dict[str, Any]:
    return {**existing, "env": {**(existing.get("env") or {}), **claude_environment(target)}}


def opencode_provider(target: Target) -> dict[str, Any]:
    return {
        "npm": "@ai-sdk/openai-compatible",
        "name": "Herd",
        "options": {"baseURL": f"{target.base_url}/v1", "apiKey": target.key},
        "models": {target.model: {"name": target.model}},
    }


def merged_opencode_config(existing: dict[str, Any], target: Target) -> dict[str, Any]:
    providers = {**(existing.get("provider") or {}), PROVIDER: opencode_provider(target)}
    config = {**existing, "provider": providers, "model": f"{PROVIDER}/{target.model}"}
    config.setdefault("$schema", "https://opencode.ai/config.json")
    return config


def config_path(agent: str, home: Path, environ: dict[str, str]) -> Path:
    """The config file ``herd launch --write`` changes."""
    if agent == "codex":
        return Path(environ.get("CODEX_HOME") or home / ".codex") / "config.toml"
    if agent == "claude":
        return Path(environ.get("CLAUDE_CONFIG_DIR") or home / ".claude") / "settings.json"
    config_home = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return config_home / "opencode" / "opencode.json"


def written_config(agent: str, existing: str, target: Target) -> str:
    """The text of the agent's config file once Herd's settings are in it."""
    if agent == "codex":
        return merged_codex_config(existing, target)
    current = json.loads(existing) if existing.strip() else {}
    if agent == "claude":
        return json.dumps(merged_claude_settings(current, target), indent=2) + "\n"
    return json.dumps(merged_opencode_config(current, target), indent=2) + "\n"


def shown_config(agent: str, target: Target) -> str:
    """What ``herd launch AGENT --config`` prints: the settings, in the form the agent reads."""
    if agent == "codex":
        return codex_toml(target)
    if agent == "claude":
        variables = claude_environment(target).items()
        return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in variables)
    return json.dumps(merged_opencode_config({}, target), indent=2) + "\n"
