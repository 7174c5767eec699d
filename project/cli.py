"""The ``herd`` command: a thin entry point over Django management commands.

``herd serve`` is ``manage.py serve``, ``herd import NAME PATH`` is ``manage.py import_model``,
and so on; any other Django command (``herd migrate``) passes straight through.
"""

from __future__ import annotations

import os
import sys

ALIASES = {
    "import": "import_model",
    "pull": "pull_model",
    "list": "list_models",
    "ls": "list_models",
    "show": "show_model",
    "rm": "remove_model",
    "cp": "copy_model",
}


def main(argv: list[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in ALIASES:
        args[0] = ALIASES[args[0]]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["herd", *args])


if __name__ == "__main__":
    main()
