"""Browser-test fixtures: Debian's Chromium driven by Playwright (one browser per module), a fresh
context and page per test (which fails the test on any Content-Security-Policy violation), and the
folder that screenshots and figures are written to."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

#: Where ``.ci/ensure-chromium`` (run by ``make test``) makes sure Chromium is.
CHROMIUM = Path(os.environ.get("CHROMIUM") or "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]

#: Set on every page before its own scripts run: records the time of each key press and pairs it
#: with the next ``item-shown`` event, both on the page's ``performance.now()`` clock.
LATENCY_PROBE = """
window.__shown = [];
(() => {
  let key = null, keyAt = null;
  window.addEventListener("keydown", (e) => { key = e.key; keyAt = performance.now(); }, true);
  document.addEventListener("item-shown", (e) => {
    window.__shown.push({ ...e.detail, key, keyAt });
    key = keyAt = null;
  });
})();
"""

#: Set on every page before its own scripts run: reports each Content-Security-Policy violation
#: (an inline script or style, another origin) to the test through ``__cspViolation``.
CSP_PROBE = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile || e.documentURI}:${e.lineNumber}`;
  window.__cspViolation(`${e.effectiveDirective} refused ${e.blockedURI || "inline"} (${where}): ${e.sample}`);
});
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """Keep each phase's report on the test item, so the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """``$TEST_ARTIFACTS/browser``, by default ``tests/artifacts/browser``: screenshots, downloads, figures."""
    root = Path(os.environ.get("TEST_ARTIFACTS") or Path(__file__).resolve().parent.parent / "artifacts")
    folder = root / "browser"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Debian Chromium; a missing binary is a failure (CI installs it), never a skip."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium)", pytrace=False)
    # Playwright's sync API keeps an asyncio loop running in this thread, so Django would refuse
    # ORM calls from the test code. The ORM runs synchronously here, so that refusal is moot.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def js_errors() -> list[str]:
    """Uncaught errors thrown by the pages' scripts during the test."""
    return []


@pytest.fixture
def csp_violations() -> list[str]:
    """What the Content-Security-Policy refused on the test's pages; the ``page`` fixture fails a test
    that leaves any here."""
    return []


@pytest.fixture
def page(
    browser: Browser,
    artifacts: Path,
    js_errors: list[str],
    csp_violations: list[str],
    request: pytest.FixtureRequest,
) -> Iterator[Page]:
    """A page in a fresh browser context with the latency and CSP probes; a screenshot is kept if the
    test fails, and the test fails if the policy refused anything on any of its pages."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    context.set_default_timeout(15_000)
    context.add_init_script(LATENCY_PROBE)
    context.expose_function("__cspViolation", lambda text: csp_violations.append(text))
    context.add_init_script(CSP_PROBE)
    # The labeling page asks before unloading while a label is in flight; let it go.
    context.on("page", lambda new: new.on("dialog", lambda dialog: dialog.accept()))
    context.on("weberror", lambda error: js_errors.append(str(error.error)))
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for i, open_page in enumerate(context.pages):
            open_page.screenshot(path=artifacts / f"FAILED-{request.node.name}-{i}.png", full_page=True)
    context.close()
    if csp_violations:
        pytest.fail("Content-Security-Policy violations:\n" + "\n".join(csp_violations), pytrace=False)
