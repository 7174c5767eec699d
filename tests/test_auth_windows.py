"""The limit decision and the token counts noted from a request's final event, without a server."""

from __future__ import annotations

from django.http import HttpRequest

from accounts.limits import Decision, LimitCheck
from accounts.lookup import KeyInfo
from accounts.usage import Tokens, note_usage, noted_tokens
from workers.broker.wire import Usage


def key_info(**limits: int | None) -> KeyInfo:
    return KeyInfo(
        id=1,
        name="k",
        prefix="herd-abc",
        user_id=1,
        user_is_staff=False,
        user_is_active=True,
        team_id=None,
        allowed_models=None,
        requests_per_minute=limits.get("rpm"),
        tokens_per_minute=limits.get("tpm"),
        tokens_per_day=limits.get("tpd"),
        expires_at=None,
        revoked=False,
    )


class Recorder:
    """Stands in for a Redis pipeline: records the commands queued."""

    def __init__(self) -> None:
        self.commands: list[tuple[str, tuple[object, ...]]] = []

    def __getattr__(self, name: str) -> object:
        return lambda *args: self.commands.append((name, args))


def decide(key: KeyInfo, now: float, results: list[object]) -> Decision:
    check = LimitCheck(key, now)
    pipe = Recorder()
    assert check.queue(pipe) == len(results)
    return check.decide(results)


def test_a_request_within_every_window_passes_with_headers() -> None:
    decision = decide(key_info(rpm=10, tpm=100), 60 * 16_667 + 20.0, [3, True, b"40"])
    assert decision.allowed
    assert decision.headers == {
        "x-ratelimit-limit-requests": "10",
        "x-ratelimit-remaining-requests": "7",
        "x-ratelimit-reset-requests": "40s",
        "x-ratelimit-limit-tokens": "100",
        "x-ratelimit-remaining-tokens": "60",
        "x-ratelimit-reset-tokens": "40s",
    }


def test_the_request_past_the_limit_is_refused_until_the_minute_turns() -> None:
    decision = decide(key_info(rpm=2), 60 * 16_667 + 50.0, [3, True])
    assert not decision.allowed
    assert decision.reason == "requests"
    assert decision.headers["Retry-After"] == "10"


def test_a_used_up_day_outlasts_a_used_up_minute() -> None:
    now = 86_400 * 20_000 + 3_600.0  # one hour into a UTC day
    decision = decide(key_info(tpm=10, tpd=50), now, [b"10", b"50"])
    assert not decision.allowed
    assert decision.retry_after == 82_800


def test_a_key_without_limits_queues_nothing() -> None:
    pipe = Recorder()
    assert LimitCheck(key_info(), 0.0).queue(pipe) == 0
    assert pipe.commands == []


def test_token_counts_are_those_the_view_noted_from_the_final_event() -> None:
    request = HttpRequest()
    assert noted_tokens(request) is None
    note_usage(request, Usage(prompt_tokens=5, completion_tokens=7))
    assert noted_tokens(request) == Tokens(5, 7)
    assert Tokens(5, 7).total == 12
