"""The ``herd`` command: a thin entry point over Django management commands.

``herd serve`` is ``manage.py serve``, ``herd import NAME PATH`` is ``manage.py import_model``,
and so on; any other Django command (``herd migrate``) passes straight through. ``herd``
alone or ``herd --help`` lists Herd's own commands, one line each, before Django's.
"""

from __future__ import annotations

import os
import sys

ALIASES = {
    "import": "import_model",
    "pull": "pull_model",
    "create": "create_model",
    "list": "list_models",
    "ls": "list_models",
    "show": "show_model",
    "ps": "ps_models",
    "stop": "stop_model",
    "rm": "remove_model",
    "cp": "copy_model",
}

# Herd's commands as ``herd --help`` lists them: what to type, and the command that runs.
HERD_COMMANDS = (
    ("serve", "serve"),
    ("run MODEL [PROMPT]", "run"),
    ("pull REF", "pull_model"),
    ("create NAME -f Modelfile", "create_model"),
    ("list", "list_models"),
    ("show NAME", "show_model"),
    ("ps", "ps_models"),
    ("stop NAME", "stop_model"),
    ("cp SOURCE DESTINATION", "copy_model"),
    ("rm NAME", "remove_model"),
    ("import NAME PATH", "import_model"),
    ("launch codex|claude|opencode", "launch"),
    ("install_demo", "install_demo"),
    ("keys", "keys"),
    ("worker", "worker"),
    ("web", "web"),
)
HELP_ARGS: tuple[list[str], ...] = ([], ["help"], ["--help"], ["-h"])

# How many times llama.cpp's CPU threads (OpenMP: GCC's libgomp) spin at a barrier, or between
# two decode steps, before they sleep. libgomp's own default (300000) keeps a core busy between a
# worker's steps, where its Python threads (sampling, sending the tokens out) need it; when
# another process takes a core, the spinning threads and the worker's own fight for the other:
# eight clients on two cores got 5 tokens/s instead of 70 (bench/RESULTS.md, "OpenMP spin
# count"). libgomp reads it once, as llama.cpp's library loads, so it is set here, before any
# command imports llama.cpp; an environment that sets it, or OMP_WAIT_POLICY, wins.
OPENMP_SPIN_COUNT = "1000"


def herd_help() -> str:
    """Herd's commands with the first line of each one's help, then Django's list."""
    import django
    from django.core.management import ManagementUtility, get_commands, load_command_class

    django.setup()
    commands = get_commands()
    width = max(len(usage) for usage, _ in HERD_COMMANDS)
    lines = ["Usage: herd <command> [options]", "", "Herd's commands:"]
    for usage, name in HERD_COMMANDS:
        summary = str(load_command_class(commands[name], name).help).split("\n")[0]
        lines.append(f"  {usage:<{width}}  {summary}")
    lines += ["", "Run 'herd <command> --help' for a command's options.", ""]
    django_help = ManagementUtility(["herd"]).main_help_text()
    return "\n".join(lines) + "\nDjango's commands (herd passes them through):\n" + django_help


def version_text() -> str:
    """Herd's version, and the Ollama API version its ``/api`` answers as."""
    from project.versions import OLLAMA_VERSION, herd_version

    return f"herd version {herd_version()} (Ollama API {OLLAMA_VERSION})"


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    if "OMP_WAIT_POLICY" not in os.environ:
        os.environ.setdefault("GOMP_SPINCOUNT", OPENMP_SPIN_COUNT)
    if args in HELP_ARGS:
        sys.stdout.write(herd_help() + "\n")
        return
    if args == ["--version"]:
        sys.stdout.write(version_text() + "\n")
        return
    if args and args[0] in ALIASES:
        args[0] = ALIASES[args[0]]
    from django.core.management import execute_from_command_line

    execute_from_command_line(["herd", *args])


if __name__ == "__main__":
    main()
