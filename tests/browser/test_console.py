"""The console in a real headless browser (Debian's chromium driven by Playwright): live status, retry, audit trail."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright
from werkzeug.serving import make_server

from functions.console import CONTENT_SECURITY_POLICY
from functions.local import LocalPlatform
from scripts.emulators import free_port
from shared.bootstrap import build_embedded_services
from tests.conftest import OPERATOR_TOKEN, SEED_REQUEST, fast_settings
from tests.functional.billing_support import billing_message

CHROMIUM = os.environ.get("ONBOARDING_CHROMIUM", "/usr/bin/chromium")
# No network of its own: no update checks, no sync, no QUIC probes; only the pages the test opens.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 30_000
# Set to a path (docs/console.png) to keep a screenshot of the page with one ACTIVE and one FAILED tenant.
SCREENSHOT = os.environ.get("ONBOARDING_CONSOLE_SCREENSHOT")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium (apt-get install chromium; .ci/run installs it): never a browser downloaded by Playwright."""
    if shutil.which(CHROMIUM) is None:
        reason = f"chromium not found at {CHROMIUM} (apt-get install chromium)"
        if os.environ.get("ONBOARDING_REQUIRE_EMULATORS") == "1":
            pytest.fail(f"the browser test is required here: {reason}", pytrace=False)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Served:
    """The local platform (fault injection on, no fault yet) behind a real HTTP server on a free port."""

    def __init__(self, data_dir: Path) -> None:
        settings = fast_settings(data_dir, ONBOARDING_FAULTS="delay_ms=0", ONBOARDING_CALL_ATTEMPTS="2")
        self.platform = LocalPlatform(build_embedded_services(settings), reconcile_every=3600)
        self.platform.start()
        self.url = f"http://127.0.0.1:{free_port()}"
        self.server = make_server("127.0.0.1", int(self.url.rsplit(":", 1)[1]), self.platform.app, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="console-server", daemon=True)
        self.thread.start()
        self.api = requests.Session()
        self.api.headers["Authorization"] = f"Bearer {OPERATOR_TOKEN}"

    def onboard(self, tenant_id: str) -> None:
        request = {**SEED_REQUEST, "tenant_id": tenant_id}
        assert self.api.post(f"{self.url}/api/v1/tenants/dryrun", json=request, timeout=30).json()["ready_for_onboarding"]
        assert self.api.post(f"{self.url}/api/v1/tenants/onboard", json=request, timeout=30).status_code == 202

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)
        self.platform.stop()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = Served(tmp_path / "data")
    yield running
    running.stop()


def _signed_in(browser: Browser, served: Served) -> tuple[Page, list[str]]:
    """A page of the console, signed in; and the list every URL the page requests is appended to."""
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    answer = page.goto(f"{served.url}/console")
    assert answer is not None and answer.status == 200
    assert answer.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    page.fill("#token", OPERATOR_TOKEN)
    page.click("#sign-in button[type=submit]")
    page.wait_for_selector("#content:not([hidden])", timeout=WAIT_MS)
    assert page.is_hidden("#sign-in") and page.is_visible("#sign-out")
    assert page.evaluate("sessionStorage.getItem('onboarding.operatorToken')") == OPERATOR_TOKEN
    return page, requested


def _row(page: Page, tenant_id: str, status: str) -> Any:
    return page.wait_for_selector(f'#tenants tr[data-tenant="{tenant_id}"][data-status="{status}"]', timeout=WAIT_MS)


def test_a_tenant_onboarded_through_the_api_appears_and_becomes_active_and_its_audit_trail_shows(browser: Browser, served: Served) -> None:
    page, requested = _signed_in(browser, served)
    served.onboard("console_live")

    _row(page, "console_live", "ACTIVE")
    steps = page.eval_on_selector_all('#tenants tr[data-tenant="console_live"] .step', "spans => spans.map(s => s.textContent)")
    assert steps == ["subscription: DONE", "quota: DONE", "dataset: DONE", "view: DONE"]

    event = billing_message("evt-console-1", "console_live", "plan_changed", 1, new_plan="SCALE")
    assert served.api.post(f"{served.url}/api/v1/billing/events", json=event, timeout=30).status_code == 202
    page.click('#tenants tr[data-tenant="console_live"] button[data-action="audit"]')
    trail = page.wait_for_selector('#events tr[data-event="evt-console-1"]', timeout=WAIT_MS)
    assert "plan_changed → SCALE" in trail.inner_text() and "applied" in trail.inner_text()
    assert requested and all(url.startswith(served.url + "/") for url in requested), requested  # nothing from outside
    page.close()


def test_a_retry_from_the_page_re_drives_a_failed_tenant(browser: Browser, served: Served) -> None:
    page, requested = _signed_in(browser, served)
    served.onboard("console_good")
    _row(page, "console_good", "ACTIVE")
    faults = served.platform.services.faults
    assert faults is not None
    served.platform.bus.stop()  # the outage is on before the steps run
    served.onboard("console_failed")
    faults.start_outage("warehouse.create_dataset")
    served.platform.bus.start()

    failed = _row(page, "console_failed", "FAILED")
    assert "outage" in failed.inner_text()
    letter = page.wait_for_selector('#dead-letters tr[data-tenant="console_failed"]', timeout=WAIT_MS)
    assert "dataset" in letter.inner_text() and "outage" in letter.inner_text()
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT, full_page=True)

    faults.end_outage("warehouse.create_dataset")
    page.click('#tenants tr[data-tenant="console_failed"] button[data-action="retry"]')
    _row(page, "console_failed", "ACTIVE")
    page.wait_for_selector('#dead-letters tr[data-tenant="console_failed"]', state="detached", timeout=WAIT_MS)
    assert "Retrying 1 failed step(s)" in page.inner_text("#message")
    assert all(url.startswith(served.url + "/") for url in requested), requested
    page.close()
