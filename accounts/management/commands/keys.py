"""``herd keys create|list|revoke``: API keys from the command line.

``create`` prints the secret alone on its last line, so that scripts can take it with
``tail -n1``; it is not stored and cannot be shown again.
"""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import ApiKey
from accounts.services import (
    KeyRequestError,
    do_create_key,
    do_revoke_key,
    find_key,
    get_or_create_team,
    get_or_create_user,
    parse_expiry,
)

ACTOR = "cli"
HEADER = ("NAME", "PREFIX", "USER", "TEAM", "MODELS", "RPM", "TPM", "TPD", "EXPIRES", "STATE")


def _models(value: str) -> list[str]:
    return [name for name in value.split(",") if name.strip()]


class Command(BaseCommand):
    help = "Create, list and revoke API keys."

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        create = commands.add_parser("create", help="create a key and print its secret")
        create.add_argument("name")
        create.add_argument("--user", default="herd", help="owner (created if new); herd")
        create.add_argument("--team", help="team (created if new)")
        create.add_argument("--models", type=_models, help="allowed models: a,b (default all)")
        create.add_argument("--rpm", type=int, help="requests per minute")
        create.add_argument("--tpm", type=int, help="tokens per minute")
        create.add_argument("--tpd", type=int, help="tokens per day")
        create.add_argument("--expires", help="YYYY-MM-DD (start of that day, UTC) or date-time")
        commands.add_parser("list", help="list keys (never their secrets)")
        revoke = commands.add_parser("revoke", help="revoke a key by name or prefix")
        revoke.add_argument("key", metavar="NAME_OR_PREFIX")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, f"_{options['action']}")(argparse.Namespace(**options))
        except KeyRequestError as exc:
            raise CommandError(str(exc)) from None

    def _create(self, opts: argparse.Namespace) -> None:
        for flag in ("rpm", "tpm", "tpd"):
            if getattr(opts, flag) is not None and getattr(opts, flag) < 1:
                raise CommandError(f"--{flag} must be at least 1")
        created = do_create_key(
            opts.name,
            user=get_or_create_user(opts.user),
            actor=ACTOR,
            team=get_or_create_team(opts.team) if opts.team else None,
            allowed_models=opts.models,
            requests_per_minute=opts.rpm,
            tokens_per_minute=opts.tpm,
            tokens_per_day=opts.tpd,
            expires_at=parse_expiry(opts.expires) if opts.expires else None,
        )
        self.stdout.write(f"Created key {created.key.name} ({created.key.prefix}…).")
        self.stdout.write("Its secret follows; it is shown this once only:")
        self.stdout.write(created.secret)

    def _list(self, opts: argparse.Namespace) -> None:
        rows = [HEADER]
        for key in ApiKey.objects.select_related("user", "team"):
            rows.append(
                (
                    key.name,
                    key.prefix,
                    key.user.get_username(),
                    key.team.name if key.team else "-",
                    ",".join(key.allowed_models) if key.allowed_models else "all",
                    _limit(key.requests_per_minute),
                    _limit(key.tokens_per_minute),
                    _limit(key.tokens_per_day),
                    key.expires_at.isoformat() if key.expires_at else "never",
                    key.state,
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
            self.stdout.write(line.rstrip())

    def _revoke(self, opts: argparse.Namespace) -> None:
        key = find_key(opts.key)
        if key.revoked:
            self.stdout.write(f"Key {key.name} ({key.prefix}…) was revoked already.")
            return
        do_revoke_key(key, ACTOR)
        self.stdout.write(f"Revoked key {key.name} ({key.prefix}…).")


def _limit(value: int | None) -> str:
    return "-" if value is None else str(value)
