"""Usage totals for the staff API: requests and tokens grouped by key, team, model or day."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db.models import Count, F, QuerySet, Sum
from django.db.models.functions import Coalesce, TruncDate

from accounts.models import UsageRecord

GROUPS = {"key": "key__name", "team": "team__name", "model": "model", "day": "day"}


def usage_totals(
    group_by: str,
    *,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    key: str | None = None,
    team: str | None = None,
    model: str | None = None,
) -> list[dict[str, Any]]:
    """One row per group: ``group`` (a key or team name, a model, an ISO day), ``requests``,
    ``prompt_tokens``, ``completion_tokens``, ``total_tokens``; ordered by group."""
    records: QuerySet[UsageRecord] = UsageRecord.objects.all()
    if since is not None:
        records = records.filter(created_at__gte=since)
    if until is not None:
        records = records.filter(created_at__lt=until)
    if key:
        records = records.filter(key__name=key)
    if team:
        records = records.filter(team__name=team)
    if model:
        records = records.filter(model=model)
    if group_by == "day":
        records = records.annotate(day=TruncDate("created_at"))
    field = GROUPS[group_by]
    rows = (
        records.values(group=F(field))
        .annotate(
            requests=Count("id"),
            prompt=Coalesce(Sum("prompt_tokens"), 0),
            completion=Coalesce(Sum("completion_tokens"), 0),
        )
        .order_by("group")
    )
    return [
        {
            "group": None if row["group"] is None else str(row["group"]),
            "requests": row["requests"],
            "prompt_tokens": row["prompt"],
            "completion_tokens": row["completion"],
            "total_tokens": row["prompt"] + row["completion"],
        }
        for row in rows
    ]
