"""The system behind the gateway, and a headless browser to look at it with."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from crm_common.config import PROCESSES
from tests.integration.conftest import client  # noqa: F401  every service and the gateway
from tests.support import settings
from tests.support.browser import LAUNCH_ARGS, chromium_path
from tests.support.waiting import free_port, free_ports, wait_for

ROOT = Path(__file__).resolve().parents[2]

BROWSER_START_MS = 20_000


def start_up(log_path, **settings):
    """`crm up` with these CRM_* settings and no others from this environment, its output
    in `log_path`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    with open(log_path, "w") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "crm_common.cli", "up"],
            cwd=ROOT,
            env={**env, **settings},
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture
def system(rabbit_config, tmp_path):
    """`crm up` in its own vhost and data directory, with no admin token given; its five
    processes serve metrics on five ports from the one given."""
    address = f"127.0.0.1:{free_port()}"
    metrics_port = free_ports(len(PROCESSES))
    log_path = tmp_path / "crm-up.log"
    process = start_up(
        log_path,
        CRM_AMQP_URI=rabbit_config["AMQP_URI"],
        CRM_DATA_DIR=str(tmp_path / "data"),
        CRM_GATEWAY_ADDRESS=address,
        CRM_REDIS_URL=settings.REDIS_URL,
        CRM_METRICS_PORT=str(metrics_port),
    )
    try:
        wait_for(
            lambda: process.poll() is not None or "crm: up." in log_path.read_text(),
            timeout=90,
            interval=0.25,
            message="crm up to report the system ready",
        )
        assert process.poll() is None, log_path.read_text()[-3000:]
        yield f"http://{address}", tmp_path / "data", log_path, metrics_port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


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
