"""Browser fixtures: Playwright driving Debian's Chromium (``/usr/bin/chromium``; never a
browser Playwright downloads). Without Playwright or that Chromium the browser tests skip,
saying which is missing.

Each test signs in through the login form, as a person would. Screenshots go to
``docs/screenshots/`` (the README shows them), or to ``HERD_SCREENSHOTS`` when it is set.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.live import REPO, LiveServer

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(os.environ.get("HERD_SCREENSHOTS") or REPO / "docs" / "screenshots")
STAFF = ("admin", "admin-pw-for-browser-tests")
VIEWER = ("viewer", "viewer-pw-for-browser-tests")

_USERS_SCRIPT = """
from django.contrib.auth.models import User
for name, password, staff in {users!r}:
    user, _ = User.objects.get_or_create(username=name)
    user.is_staff = user.is_superuser = staff
    user.set_password(password)
    user.save()
"""


def add_users(server: LiveServer) -> None:
    """A staff user and a plain one, in the live server's own database."""
    users = [(*STAFF, True), (*VIEWER, False)]
    server.herd("shell", "-c", _USERS_SCRIPT.format(users=users))


# Module scope, not session: while Playwright's sync API is open its event loop counts as
# running in this thread, and every later test that calls async code through async_to_sync
# (Django's test client included) would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright is not installed: pip install -e '.[dev]'")
    if not CHROMIUM.exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        yield launched
        launched.close()


def sign_in(browser: Browser, server: LiveServer, who: tuple[str, str] = VIEWER) -> Page:
    """A page of a fresh browser context, signed in through the login form."""
    context = browser.new_context(
        base_url=server.base_url, viewport={"width": 1200, "height": 800}, accept_downloads=True
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.goto("/ui/login/")
    page.fill("input[name=username]", who[0])
    page.fill("input[name=password]", who[1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.base_url}/")
    return page


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def read_number(page: Page, selector: str, attribute: str) -> Any:
    value = page.get_attribute(selector, attribute)
    return None if value is None else float(value)
