"""The pages in a real browser (Chromium through Playwright) against a live ``herd serve``:
sign-in, a pull whose bar moves to 100% without a reload, streaming chat in the playground, a
batch from upload to downloaded output, the workers and usage pages. Each test saves
screenshots of the pages it visits (see tests.browser)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tests.browser import STAFF, VIEWER, add_users, browser, screenshot, sign_in
from tests.hub_server import FakeHub
from tests.keyed import STAFF_PASSWORD, STAFF_USER, KeyedServer
from tests.live import LiveServer
from tests.tiny_gguf import write_tiny_gguf

if TYPE_CHECKING:
    from playwright.sync_api import Browser

expect = pytest.importorskip(
    "playwright.sync_api", reason="Playwright is not installed: pip install -e '.[dev]'"
).expect

__all__ = ["browser"]  # the fixture, imported for the tests here

# Slow enough (about 3 s) that the bar is seen between 0% and 100%.
PULL_REPO = "tester/browser-GGUF"
PULL_THROTTLE = 150_000


@pytest.fixture(scope="module")
def ui_server(server: LiveServer) -> LiveServer:
    add_users(server)
    return server


@pytest.fixture(scope="module")
def ui_pull_server(
    pull_server: LiveServer, hub: FakeHub, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    model = write_tiny_gguf(tmp_path_factory.mktemp("browser-hub") / "b.gguf", n_ctx=2048, seed=77)
    hub.add_files(PULL_REPO, {"b-Q4_K_M.gguf": model}, throttle=PULL_THROTTLE)
    add_users(pull_server)
    yield pull_server


def audit_log(server: LiveServer) -> list[tuple[str, str, str]]:
    script = (
        "from accounts.models import AuditEntry\n"
        "for e in AuditEntry.objects.all(): print(e.actor_name, e.action, e.target)"
    )
    lines = server.herd("shell", "-c", script).stdout.splitlines()
    rows = [line.split(" ", 2) for line in lines]
    return [(row[0], row[1], row[2]) for row in rows if len(row) == 3]


def test_pages_need_a_sign_in(browser: Browser, ui_server: LiveServer) -> None:
    context = browser.new_context(base_url=ui_server.base_url)
    page = context.new_page()
    for path in ("/", "/ui/workers/", "/ui/playground/"):
        page.goto(path)
        assert page.url.startswith(f"{ui_server.base_url}/ui/login/?next=")
    page.fill("input[name=username]", VIEWER[0])
    page.fill("input[name=password]", "wrong password")
    page.click("button[type=submit]")
    expect(page.locator(".error")).to_contain_text("did not match")
    screenshot(page, "login")
    # An Ollama client's probe of the same URL still gets the plain answer.
    probe = httpx.get(f"{ui_server.base_url}/", timeout=10)
    assert probe.status_code == 200 and probe.text == "Ollama is running"
    context.close()


def test_pulling_a_model_moves_its_bar_to_100_percent_without_a_reload(
    browser: Browser, ui_pull_server: LiveServer
) -> None:
    page = sign_in(browser, ui_pull_server, STAFF)
    page.evaluate("window.notReloaded = true")
    page.fill("#pull-form input[name=reference]", f"hf.co/{PULL_REPO}")
    page.click("#pull-form button[type=submit]")
    bar = page.locator("#pull-list .pull").first
    expect(bar).to_be_visible()
    seen: list[int] = []
    shot = False
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Status first: each refresh swaps in a new bar, so a percent read after a final
        # status is that bar's own, never one from the refresh before it.
        status = bar.get_attribute("data-status")
        percent = bar.get_attribute("data-percent")
        if percent is not None and (not seen or seen[-1] != int(percent)):
            seen.append(int(percent))
        if status in ("ready", "failed", "cancelled"):
            break
        if len(seen) == 2 and not shot:
            screenshot(page, "catalog-pulling")
            shot = True
        time.sleep(0.1)
    assert bar.get_attribute("data-status") == "ready", seen
    assert seen[-1] == 100
    assert any(0 < p < 100 for p in seen), f"the bar never showed a step between: {seen}"
    assert seen == sorted(seen)
    expect(bar.locator(".label")).to_have_text("100%")
    assert page.evaluate("window.notReloaded") is True
    # The table reloads itself with the new model once the pull is done.
    row = page.locator(f'#models tr[data-model="hf.co/{PULL_REPO}:latest"]')
    expect(row).to_contain_text("ready")
    expect(row).to_contain_text("llama")  # the family, from the file's GGUF header
    expect(row).to_contain_text("2048")  # its context length
    screenshot(page, "catalog-pulled")
    assert ("admin", "model_pulled", f"hf.co/{PULL_REPO}:latest") in audit_log(ui_pull_server)

    row.locator("a").first.click()
    expect(page.locator("h1")).to_contain_text("browser")
    expect(page.locator("pre.template")).to_be_visible()
    screenshot(page, "model")
    page.click("text=Delete…")
    expect(page.locator("h1")).to_contain_text("Delete")
    screenshot(page, "delete")
    page.click("form button.danger")
    page.wait_for_url(f"{ui_pull_server.base_url}/")
    expect(page.locator(".messages")).to_contain_text("Deleted")
    expect(page.locator(f'#models tr[data-model="hf.co/{PULL_REPO}:latest"]')).to_have_count(0)
    assert ("admin", "model_deleted", f"hf.co/{PULL_REPO}:latest") in audit_log(ui_pull_server)
    page.context.close()


def test_a_variant_is_created_from_a_models_page_and_shows_its_parent(
    browser: Browser, ui_server: LiveServer
) -> None:
    page = sign_in(browser, ui_server, STAFF)
    page.click('#models tr[data-model="tiny:latest"] a')
    page.click("text=Create a variant")
    expect(page.locator("h1")).to_have_text("Create a variant")
    expect(page.locator("#id_source")).to_have_value("tiny:latest")
    # A mistake in the parameters is shown by the field, and nothing is made.
    page.fill("#id_name", "tiny-browser")
    page.fill("#id_parameters", "tempreature 0.3")
    page.click("#variant-form button[type=submit]")
    expect(page.locator("#variant-form .error")).to_contain_text(
        "line 1: unknown parameter 'tempreature'"
    )
    page.goto("/ui/models/variant/?from=tiny:latest")
    page.fill("#id_name", "tiny-browser")
    page.fill("#id_system_prompt", "You answer as a browser would.")
    page.fill("#id_parameters", "temperature 0.3\nstop <|end|>")
    screenshot(page, "variant")
    page.click("#variant-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text(
        "Created tiny-browser:latest, a variant of tiny:latest."
    )
    expect(page.locator("h1")).to_contain_text("tiny-browser:latest")
    expect(page.locator("dd.parent")).to_have_text("tiny:latest")
    expect(page.locator("main, body").first).to_contain_text("You answer as a browser would.")
    page.goto("/")
    row = page.locator('#models tr[data-model="tiny-browser:latest"]')
    expect(row.locator("td.parent")).to_have_text("tiny:latest")
    assert ("admin", "model_created", "tiny-browser:latest") in audit_log(ui_server)
    shown = httpx.post(
        f"{ui_server.base_url}/api/show", json={"model": "tiny-browser"}, timeout=30
    ).json()
    assert shown["details"]["parent_model"] == "tiny:latest"
    assert shown["system"] == "You answer as a browser would."
    page.context.close()
    # Someone who is not staff may not.
    viewer = sign_in(browser, ui_server, VIEWER)
    expect(viewer.locator("#create-variant")).to_have_count(0)
    assert viewer.goto("/ui/models/variant/").status == 403  # type: ignore[union-attr]
    viewer.context.close()


def test_the_playground_streams_tokens_and_shows_tokens_per_second(
    browser: Browser, ui_server: LiveServer
) -> None:
    page = sign_in(browser, ui_server)
    page.goto("/ui/playground/?model=slow:latest")
    # Record the answer's length at every change, to see it grow in steps.
    page.evaluate(
        """() => {
            window.lengths = [];
            new MutationObserver(() => {
                const answer = document.querySelector('#transcript .assistant .text');
                if (answer) window.lengths.push(answer.textContent.length);
            }).observe(document.getElementById('transcript'),
                       {childList: true, subtree: true, characterData: true});
        }"""
    )
    page.fill("#max-tokens", "120")
    # Greedy: a sampled answer from random weights can meet its end-of-text token early.
    page.fill("#temperature", "0")
    page.fill("#message", "Tell me a long story about a herd of llamas.")
    page.click("#send")
    expect(page.locator("#send")).to_be_enabled(timeout=60_000)
    lengths = [n for n in page.evaluate("window.lengths") if n > 0]
    assert len(set(lengths)) >= 5, f"the answer did not arrive token by token: {lengths}"
    assert lengths == sorted(lengths)
    stats = page.locator("#stats")
    assert float(stats.get_attribute("data-tokens") or 0) >= 5
    assert float(stats.get_attribute("data-rate") or 0) > 0
    expect(stats).to_contain_text("tokens/s")
    expect(page.locator(".turn.error")).to_have_count(0)
    screenshot(page, "playground")
    page.context.close()


def test_a_batch_runs_from_upload_to_downloaded_output(
    browser: Browser, ui_server: LiveServer, tmp_path: Path
) -> None:
    lines = [
        {
            "custom_id": f"line-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "tiny",
                "messages": [{"role": "user", "content": f"count to {i}"}],
                "max_tokens": 8,
            },
        }
        for i in range(6)
    ]
    page = sign_in(browser, ui_server)
    page.goto("/ui/batches/")
    page.set_input_files(
        "#batch-form input[name=file]",
        {
            "name": "questions.jsonl",
            "mimeType": "application/jsonl",
            "buffer": "".join(json.dumps(line) + "\n" for line in lines).encode(),
        },
    )
    page.select_option("#batch-form select[name=endpoint]", "/v1/chat/completions")
    page.click("#batch-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Created batch_")
    row = page.locator("tr[data-batch]").first
    progress = row.locator(".batch-progress")
    expect(progress).to_have_attribute("data-status", "completed", timeout=60_000)
    expect(progress).to_have_attribute("data-percent", "100")
    expect(progress.locator(".counts")).to_have_text("6 completed, 0 failed of 6")
    screenshot(page, "batches")
    with page.expect_download() as download_info:
        row.locator("a.download-output").click()
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    results = [json.loads(line) for line in saved.read_text().splitlines()]
    assert sorted(r["custom_id"] for r in results) == [f"line-{i}" for i in range(6)]
    assert all(r["response"]["status_code"] == 200 for r in results)
    row.locator("a").first.click()
    expect(page.locator(".batch-progress")).to_have_attribute("data-status", "completed")
    screenshot(page, "batch")
    page.context.close()


def test_the_workers_page_shows_the_live_worker_and_what_it_holds(
    browser: Browser, ui_server: LiveServer
) -> None:
    answer = httpx.post(
        f"{ui_server.base_url}/v1/chat/completions",
        json={"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
        timeout=60,
    )
    assert answer.status_code == 200
    page = sign_in(browser, ui_server)
    page.goto("/ui/workers/")
    card = page.locator("section.worker").first
    expect(card).to_contain_text("cpu")
    expect(card.locator('tr[data-model="tiny:latest"]')).to_be_visible()
    first_age = float(card.locator(".heartbeat").inner_text().split()[0])
    assert first_age < 5
    # The body refreshes itself: the card is replaced by a fresh one, without a reload.
    page.evaluate(
        "window.notReloaded = true;document.querySelector('section.worker').dataset.stale = 'yes'"
    )
    expect(page.locator("section.worker[data-stale]")).to_have_count(0, timeout=10_000)
    expect(card).to_contain_text("cpu")
    assert page.evaluate("window.notReloaded") is True
    screenshot(page, "workers")
    page.goto("/")
    expect(page.locator('tr[data-model="tiny:latest"] .resident')).to_contain_text("cpu@")
    screenshot(page, "catalog")
    page.context.close()


def test_the_usage_page_charts_the_tokens_just_used(
    browser: Browser, ui_server: LiveServer
) -> None:
    httpx.post(
        f"{ui_server.base_url}/v1/completions",
        json={"model": "tiny", "prompt": "usage", "max_tokens": 6},
        timeout=60,
    ).raise_for_status()
    page = sign_in(browser, ui_server)
    deadline = time.monotonic() + 20
    while True:  # the usage record is written just after the response
        page.goto("/ui/usage/")
        if page.locator("svg.chart rect").count() or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    expect(page.locator("svg.chart").first.locator("rect").first).to_be_attached()
    expect(page.locator(".legend").first).to_contain_text("tiny:latest")
    screenshot(page, "usage")
    page.context.close()


def test_the_playground_sends_the_api_key_a_keyed_server_requires(
    browser: Browser, keyed_server: KeyedServer
) -> None:
    page = sign_in(browser, keyed_server, (STAFF_USER, STAFF_PASSWORD))
    page.goto("/ui/playground/?model=tiny:latest")
    page.fill("#max-tokens", "8")
    page.fill("#message", "hello without a key")
    page.click("#send")
    expect(page.locator(".turn.error")).to_contain_text("missing API key")
    page.fill("#api-key", keyed_server.staff_secret)
    page.dispatch_event("#api-key", "change")
    page.fill("#message", "hello with a key")
    page.click("#send")
    expect(page.locator("#send")).to_be_enabled(timeout=60_000)
    expect(page.locator(".turn.error")).to_have_count(1)
    assert float(page.locator("#stats").get_attribute("data-tokens") or 0) > 0
    assert page.locator(".turn.assistant .text").last.inner_text().strip()
    page.context.close()


def test_the_playgrounds_stop_button_ends_a_runaway_answer_and_its_generation(
    browser: Browser, ui_server: LiveServer
) -> None:
    from tests.test_streaming_relay import assert_cancelled_at_once

    streams = f"{ui_server.namespace}:req:*"
    before = set(ui_server.redis().scan_iter(streams))
    page = sign_in(browser, ui_server)
    page.goto("/ui/playground/?model=slow:latest")
    page.fill("#max-tokens", "3000")
    page.fill("#temperature", "0")
    # The relay tests' long answer: greedy, the slow model writes to max_tokens.
    page.fill("#message", "go")
    page.click("#send")
    answer = page.locator("#transcript .assistant .text")
    page.wait_for_function(
        "() => (document.querySelector('#transcript .assistant .text')?.textContent || '')"
        ".length > 10"
    )
    (stream,) = set(ui_server.redis().scan_iter(streams)) - before
    page.click("#stop")
    expect(page.locator("#send")).to_be_enabled()
    expect(page.locator("#stop")).to_be_disabled()
    assert_cancelled_at_once(ui_server, stream.decode().rpartition(":req:")[2])
    assert answer.text_content()
    expect(page.locator(".turn.error")).to_have_count(0)
    page.context.close()
