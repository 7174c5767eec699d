"""The usage page: tokens per day by model and by key, drawn from accounts.UsageRecord."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, UsageRecord
from project.pages.charts import PALETTE, stacked_by_day

pytestmark = pytest.mark.django_db


def use(model: str, tokens: tuple[int, int], days_ago: int, key: ApiKey | None = None) -> None:
    UsageRecord.objects.create(
        key=key,
        model=model,
        endpoint="/v1/chat/completions",
        method="POST",
        status=200,
        prompt_tokens=tokens[0],
        completion_tokens=tokens[1],
        duration_ms=10.0,
        created_at=timezone.now() - dt.timedelta(days=days_ago),
    )


@pytest.fixture
def web() -> Client:
    User.objects.create_user("viewer", password="pw")
    client = Client()
    client.login(username="viewer", password="pw")
    return client


def test_the_usage_page_charts_tokens_per_day_by_model_and_by_key(web: Client) -> None:
    owner = User.objects.create_user("owner")
    key = ApiKey.objects.create(name="ci-bot", user=owner, secret_hash="0" * 64, prefix="hk-0")
    use("tiny:latest", (10, 20), days_ago=0, key=key)
    use("tiny:latest", (5, 5), days_ago=0)
    use("slow:latest", (100, 0), days_ago=2, key=key)
    use("slow:latest", (1, 1), days_ago=45)  # outside the 30 days shown
    page = web.get("/ui/usage/", headers={"Accept": "text/html"}).content.decode()
    titles = re.findall(r"<title>([^<]+)</title>", page)
    today = timezone.localdate()
    two_days_ago = today - dt.timedelta(days=2)
    assert f"{today.isoformat()} · tiny:latest: 40 tokens" in titles
    assert f"{two_days_ago.isoformat()} · slow:latest: 100 tokens" in titles
    assert f"{today.isoformat()} · ci-bot: 30 tokens" in titles
    assert f"{today.isoformat()} · (no key): 10 tokens" in titles
    assert f"{two_days_ago.isoformat()} · ci-bot: 100 tokens" in titles
    assert "slow:latest: 100 tokens" in page  # the legend's total leaves out day 45
    wider = web.get("/ui/usage/?days=90", headers={"Accept": "text/html"}).content.decode()
    assert "slow:latest: 102 tokens" in wider


def test_an_empty_period_says_so(web: Client) -> None:
    page = web.get("/ui/usage/?days=7", headers={"Accept": "text/html"}).content.decode()
    assert page.count("No tokens used in this period.") == 2


def test_bars_stack_to_the_busiest_day_and_extra_series_become_other() -> None:
    days = [dt.date(2026, 1, 1), dt.date(2026, 1, 2)]
    values = {(days[0], f"m{i}"): 10 * (i + 1) for i in range(len(PALETTE) + 2)}
    values[(days[1], "m0")] = 5
    chart = stacked_by_day(values, days)
    names = [name for name, _, _ in chart.legend]
    assert names[-1] == "other" and len(names) == len(PALETTE) + 1
    # The busiest day's segments fill the plot's whole height.
    first_day = [s for s in chart.segments if s.title.startswith("2026-01-01")]
    top = min(s.y for s in first_day)
    assert round(top, 3) == 12
    assert round(sum(s.height for s in first_day), 3) == chart.baseline - 12
