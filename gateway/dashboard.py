"""GET /dashboard: the reports as charts, for a person (files in gateway/static/dashboard/).

The page and its scripts are public and hold no data; the scripts ask the
person for a token and read /api/v1/reports with it, like any client app.
The chart library comes from npm (`make setup` runs `npm ci` there) and is
served from here, so the page needs nothing but the gateway.
"""

from pathlib import Path

from gateway import openapi
from gateway.http import api
from gateway.static_files import StaticFiles

FOLDER = Path(__file__).parent / "static" / "dashboard"
LIBRARIES = {
    "vendor/chart.umd.min.js": FOLDER / "node_modules" / "chart.js" / "dist" / "chart.umd.min.js",
}
# Everything the page loads comes from the gateway; nothing inline, no framing.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
FILES = StaticFiles(FOLDER, mapped=LIBRARIES, page_headers=PAGE_HEADERS)


class DashboardEndpoints:
    """Mixed into the gateway service."""

    @api("GET", "/dashboard", answers=openapi.PAGE)
    def dashboard(self, request):
        """The dashboard page."""
        return FILES.response(request, "index.html")

    @api("GET", "/dashboard/<path:name>", answers=openapi.PAGE_FILE)
    def dashboard_file(self, request, name):
        """A script, style sheet or library of the dashboard page."""
        return FILES.response(request, name)
