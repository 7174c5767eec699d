"""Other names a model answers to: a team maps the names an agent asks for (Claude Code asks
for ``claude-sonnet-...`` and ``claude-haiku-...`` unless told otherwise) to a local model once,
on the record (admin, ``/api/create``'s ``aliases``, a Modelfile's ``ALIAS`` lines), instead of
setting variables on every laptop.

An alias is a name as Ollama spells one (``name[:tag]``, ``latest`` implied) that is neither
another record's name nor another record's alias. A record's own name wins over any alias.
"""

from __future__ import annotations

from typing import Any

from models_app.models import ModelRecord, ModelStatus
from models_app.names import InvalidModelName, normalize_model_name


def check_aliases(raw: Any, name: str, *, exclude: int | None = None) -> list[str]:
    """``raw`` as the aliases of the record ``name`` (``exclude``: its id, when it exists):
    normalized, without repeats. Raises ValueError for a list that is not one of names, a
    name that is the record's own, or one another record has (as its name or an alias)."""
    if not isinstance(raw, list) or not all(isinstance(a, str) for a in raw):
        raise ValueError("aliases must be a list of model names")
    aliases: list[str] = []
    for alias in raw:
        try:
            normalized = normalize_model_name(alias)
        except InvalidModelName as exc:
            raise ValueError(str(exc)) from None
        if normalized == normalize_model_name(name):
            raise ValueError(f"'{alias}' is the model's own name")
        if normalized not in aliases:
            aliases.append(normalized)
    others = ModelRecord.objects.exclude(pk=exclude) if exclude else ModelRecord.objects.all()
    for other in others.filter(name__in=aliases).values_list("name", flat=True):
        raise ValueError(f"'{other}' is the name of another model")
    for other_name, other_aliases in others.exclude(aliases=[]).values_list("name", "aliases"):
        taken = set(aliases) & set(other_aliases or [])
        if taken:
            raise ValueError(f"'{sorted(taken)[0]}' is already an alias of '{other_name}'")
    return aliases


def ready_records_with_aliases() -> Any:
    return ModelRecord.objects.filter(status=ModelStatus.READY).exclude(aliases=[])


def find_by_alias(normalized: str) -> ModelRecord | None:
    """The ready record that has ``normalized`` among its aliases. Aliases are few (a team
    names a handful), so the records that have any are read and looked through."""
    for record in ready_records_with_aliases():
        if normalized in (record.aliases or []):
            return record
    return None


async def afind_by_alias(normalized: str) -> ModelRecord | None:
    async for record in ready_records_with_aliases():
        if normalized in (record.aliases or []):
            return record
    return None
