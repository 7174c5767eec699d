"""The APIs skip Django's page middleware (sessions, CSRF, messages, frame headers); the pages
keep all of it."""

from __future__ import annotations

from tests.inprocess import InProcessServer


def test_pages_keep_djangos_middleware_and_the_apis_pass_it_by(web: InProcessServer) -> None:
    page = web.get(f"{web.base_url}/admin/login/", timeout=30)
    assert page.status_code == 200
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "csrftoken" in page.cookies
    # Without the CSRF token the login form is refused, as Django refuses it.
    refused = web.post(
        f"{web.base_url}/admin/login/", data={"username": "x", "password": "y"}, timeout=30
    )
    assert refused.status_code == 403

    api = web.get(f"{web.base_url}/v1/models", timeout=30)
    assert api.status_code == 200
    assert "X-Frame-Options" not in api.headers
    assert "Set-Cookie" not in api.headers
