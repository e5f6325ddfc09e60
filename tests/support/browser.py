"""Headless Chromium for the dashboard's browser test: Debian's package, driven by Playwright.

Playwright's own browser downloads cannot be had here, so it drives the
system's Chromium (`tests.support.prepare` installs it when missing).
"""

import os
import shutil

CANDIDATES = ("chromium", "chromium-browser")
# As root there is no user namespace to sandbox in; the other flags keep Chromium from
# calling home (the machine's network is closed, and each refused connection costs time).
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]


def chromium_path():
    """The Chromium to drive: CRM_TEST_CHROMIUM, else the system's; None if there is none."""
    given = os.environ.get("CRM_TEST_CHROMIUM")
    if given:
        return given if os.access(given, os.X_OK) else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None
