"""Waiting in tests: on the state that is meant, with a deadline, never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# How often a condition is looked at again: short against any deadline, long enough not to
# take a loaded machine's cores from the code under test.
POLL_SECONDS = 0.02


def wait_until(predicate: Callable[[], T], timeout: float, what: str) -> T:
    """The first true value ``predicate`` returns, looked at until ``timeout`` seconds have
    passed; then an AssertionError saying ``what`` never came about."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {timeout:g} s")
        time.sleep(POLL_SECONDS)
