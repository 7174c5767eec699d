"""The usage page: tokens per day, by model and by key, from the usage records the API
middleware writes (``accounts.UsageRecord``)."""

from __future__ import annotations

import datetime as dt

from django.contrib.auth.decorators import login_required
from django.db.models import F, Sum
from django.db.models.functions import TruncDate
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from accounts.models import UsageRecord
from accounts.reports import usage_totals
from project.pages.charts import stacked_by_day

PERIODS = (7, 30, 90)
NO_KEY = "(no key)"


def tokens_per_day(since: dt.datetime, field: str) -> dict[tuple[dt.date, str], int]:
    """Total tokens per (day, value of ``field``) since ``since``."""
    rows = (
        UsageRecord.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day", series=F(field))
        .annotate(tokens=Sum(F("prompt_tokens") + F("completion_tokens")))
    )
    values: dict[tuple[dt.date, str], int] = {}
    for row in rows:
        series = row["series"] or (NO_KEY if field == "key__name" else "(none)")
        key = (row["day"], str(series))
        values[key] = values.get(key, 0) + int(row["tokens"] or 0)
    return values


@login_required
@require_GET
def usage_page(request: HttpRequest) -> HttpResponse:
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    today = timezone.localdate()
    first = today - dt.timedelta(days=days - 1)
    since = timezone.make_aware(dt.datetime.combine(first, dt.time.min))
    calendar = [first + dt.timedelta(days=i) for i in range(days)]
    context = {
        "nav": "usage",
        "days": days,
        "periods": PERIODS,
        "by_model": stacked_by_day(tokens_per_day(since, "model"), calendar),
        "by_key": stacked_by_day(tokens_per_day(since, "key__name"), calendar),
        "model_totals": usage_totals("model", since=since),
        "key_totals": usage_totals("key", since=since),
    }
    return render(request, "usage/usage.html", context)
