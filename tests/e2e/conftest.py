"""The system behind the gateway, and a headless browser to look at it with."""

import pytest

from tests.integration.conftest import client  # noqa: F401  every service and the gateway
from tests.support.browser import LAUNCH_ARGS, chromium_path

BROWSER_START_MS = 20_000


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium, headless, driven by Playwright; skips only where there is none."""
    path = chromium_path()
    if path is None:
        pytest.skip("no chromium: `make test` installs Debian's (tests.support.prepare)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="`make setup` installs playwright")
    # Not stopped at the end: Playwright's stop waits for its dispatcher greenlet to end and
    # be switched back from, but eventlet re-parents every greenlet that waits on the hub, so
    # the wait would never return. Its driver process ends with the test process instead.
    playwright = sync_api.sync_playwright().start()
    browser = playwright.chromium.launch(
        executable_path=path, args=LAUNCH_ARGS, headless=True, timeout=BROWSER_START_MS
    )
    yield browser
    browser.close()
