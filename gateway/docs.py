"""/openapi.json and /docs: the HTTP API described, and a page to read and try it.

Both are open (no token): they say what the API is, not what it holds. The
page (gateway/static/docs/) is Swagger UI from the swagger-ui-bundle package;
the gateway serves every script, style sheet and icon it needs, so it works
offline, and its Content-Security-Policy lets it load nothing from anywhere
else (Swagger UI's online validator is switched off for the same reason).
"""

from pathlib import Path

from swagger_ui_bundle import swagger_ui_path

from gateway import openapi
from gateway.http import api
from gateway.static_files import StaticFiles

FOLDER = Path(__file__).parent / "static" / "docs"
# What the page needs of the package, and nothing else of it.
SWAGGER_UI = (
    "swagger-ui.css",
    "index.css",
    "swagger-ui-bundle.js",
    "swagger-ui-standalone-preset.js",
    "favicon-32x32.png",
    "favicon-16x16.png",
)
# Swagger UI sets style attributes and draws icons from data: URLs; nothing else is needed.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}
FILES = StaticFiles(
    FOLDER,
    mapped={f"swagger-ui/{name}": swagger_ui_path / name for name in SWAGGER_UI},
    page_headers=PAGE_HEADERS,
)


class DocsEndpoints:
    """Mixed into the gateway service: the document is built from the service's own class."""

    @api("GET", "/openapi.json", answers={200: openapi.JSON_DOCUMENT})
    def openapi_document(self, request):
        """This document: the HTTP API in OpenAPI 3, from the gateway's routes and schemas."""
        return openapi.document(type(self))

    @api("GET", "/docs", answers=openapi.PAGE)
    def docs_page(self, request):
        """A page that shows this document and tries the API (Swagger UI), offline."""
        return FILES.response(request, "index.html")

    @api("GET", "/docs/<path:name>", answers=openapi.PAGE_FILE)
    def docs_file(self, request, name):
        """A script, style sheet or icon of the documentation page."""
        return FILES.response(request, name)
