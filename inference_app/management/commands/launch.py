"""``herd launch codex|claude|opencode [--model M]``: point a coding agent at this Herd, as
``ollama launch`` does.

By default it starts the agent (found on ``PATH``) with the settings that point it here, and
touches no file; ``--config`` prints those settings instead, and ``--write`` writes them into
the agent's own config file, so that a plain ``codex --profile herd``, ``claude`` or
``opencode`` uses Herd from then on. An agent that is not installed gets its settings printed
with how to install it. Arguments after ``--`` go to the agent.

The server is ``HERD_HOST``; the key is ``--key`` or ``HERD_API_KEY`` (any value while keys
are off); the model is ``--model``, else the first the server lists.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference_app import launch
from models_app.client import HerdClient, server_url


class Command(BaseCommand):
    help = "Point a coding agent (codex, claude, opencode) at this Herd, and start it."
    agent_args: list[str] = []

    def run_from_argv(self, argv: list[str]) -> None:
        # What follows "--" is the agent's, whatever it looks like.
        if "--" in argv:
            split = argv.index("--")
            argv, self.agent_args = argv[:split], argv[split + 1 :]
        super().run_from_argv(argv)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("agent", choices=launch.AGENTS)
        parser.add_argument("--model", help="the model the agent uses (default: the first)")
        parser.add_argument(
            "--key", help=f"the Herd key the agent sends (default: ${launch.KEY_VARIABLE})"
        )
        parser.add_argument(
            "--config", action="store_true", help="print the agent's settings; start nothing"
        )
        parser.add_argument(
            "--write", action="store_true", help="write the settings into the agent's config"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        agent: str = options["agent"]
        target = self._target(options)
        if options["write"]:
            self._write(agent, target)
            return
        program = shutil.which(agent)
        if options["config"] or program is None:
            if program is None and not options["config"]:
                self.stderr.write(
                    f"{agent} is not installed ({launch.INSTALL[agent]}); its settings:\n"
                )
            self.stdout.write(launch.shown_config(agent, target), ending="")
            return
        self._start(agent, program, target, self.agent_args)

    def _target(self, options: dict[str, Any]) -> launch.Target:
        base_url = server_url(str(settings.HERD_HOST))
        key = options["key"] or os.environ.get(launch.KEY_VARIABLE) or ""
        if not key:
            if settings.HERD_AUTH_REQUIRED:
                raise CommandError(
                    f"give --key or set {launch.KEY_VARIABLE}: this Herd requires a key "
                    "('herd keys create NAME' makes one)"
                )
            key = "herd"  # keys are off: agents still want one to send
        model = options["model"] or self._first_model(key)
        return launch.Target(base_url=base_url, model=model, key=key)

    def _first_model(self, key: str) -> str:
        os.environ.setdefault(launch.KEY_VARIABLE, key)
        listed = HerdClient(timeout=30).call("GET", "/api/tags")
        models = [m["name"] for m in listed.get("models", [])]
        if not models:
            raise CommandError("the server has no model yet: 'herd pull' one, or give --model")
        first: str = models[0]
        return first

    def _write(self, agent: str, target: launch.Target) -> None:
        path = launch.config_path(agent, Path.home(), dict(os.environ))
        existing = path.read_text() if path.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(launch.written_config(agent, existing, target))
        self.stdout.write(f"wrote {path}")
        if agent == "codex":
            self.stdout.write(
                f"run: export {launch.KEY_VARIABLE}={shlex.quote(target.key)}; codex --profile herd"
            )
        else:
            self.stdout.write(f"run: {agent}")

    def _start(self, agent: str, program: str, target: launch.Target, extra: list[str]) -> None:
        environ = dict(os.environ)
        argv = [program]
        if agent == "codex":
            environ[launch.KEY_VARIABLE] = target.key
            argv += launch.codex_arguments(target)
        elif agent == "claude":
            environ.update(launch.claude_environment(target))
        else:
            config = settings.HERD_HOME / "launch" / "opencode.json"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(launch.written_config("opencode", "", target))
            environ["OPENCODE_CONFIG"] = str(config)
        sys.stdout.flush()
        os.execvpe(program, [*argv, *extra], environ)
