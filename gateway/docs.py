"""/openapi.json and /docs: the HTTP API described, and a page to read and try it.

Both are open (no token): they say what the API is, not what it holds. The
page is Swagger UI from the swagger-ui-bundle package; the gateway serves
every script, style sheet and icon it needs, so it works offline, and its
Content-Security-Policy lets it load nothing from anywhere else (Swagger UI's
online validator badge is switched off for the same reason).
"""

import functools

from swagger_ui_bundle import swagger_ui_path
from werkzeug.wrappers import Response

from gateway import openapi
from gateway.http import ApiError, api

DOCS = "/docs"
# The files of the page, by name: what Swagger UI needs and nothing else of the package.
ASSETS = {
    "swagger-ui.css": "text/css",
    "index.css": "text/css",
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui-standalone-preset.js": "text/javascript",
    "favicon-32x32.png": "image/png",
    "favicon-16x16.png": "image/png",
}
# Ours, not the package's: a file, since the page's policy runs no inline script.
STARTER = "start.js"
STARTER_JS = """\
window.onload = function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
  });
};
"""
PAGE = f"""\
<!DOCTYPE html>
<html lang="en">
  <head>
    <meta charset="UTF-8">
    <title>{openapi.TITLE}</title>
    <link rel="stylesheet" type="text/css" href="{DOCS}/swagger-ui.css">
    <link rel="stylesheet" type="text/css" href="{DOCS}/index.css">
    <link rel="icon" type="image/png" href="{DOCS}/favicon-32x32.png" sizes="32x32">
    <link rel="icon" type="image/png" href="{DOCS}/favicon-16x16.png" sizes="16x16">
  </head>
  <body>
    <div id="swagger-ui"></div>
    <script src="{DOCS}/swagger-ui-bundle.js" charset="UTF-8"></script>
    <script src="{DOCS}/swagger-ui-standalone-preset.js" charset="UTF-8"></script>
    <script src="{DOCS}/{STARTER}" charset="UTF-8"></script>
  </body>
</html>
"""
# Swagger UI sets style attributes and draws icons from data: URLs; nothing else is needed.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
ASSET_MAX_AGE_SECONDS = 3600


class DocsEndpoints:
    """Mixed into the gateway service: the document is built from the service's own class."""

    @api("GET", "/openapi.json", answers={200: openapi.JSON_DOCUMENT})
    def openapi_document(self, request):
        """This document: the HTTP API in OpenAPI 3, from the gateway's routes and schemas."""
        return openapi.document(type(self))

    @api("GET", DOCS, answers={200: openapi.HTML})
    def docs_page(self, request):
        """A page that shows this document and tries the API (Swagger UI), offline."""
        return Response(
            PAGE, mimetype="text/html", headers={"Content-Security-Policy": PAGE_POLICY}
        )

    @api("GET", f"{DOCS}/<string:asset>", answers={200: openapi.ASSET})
    def docs_asset(self, request, asset):
        """A script, style sheet or icon of the documentation page."""
        if asset == STARTER:
            body, mimetype = STARTER_JS, "text/javascript"
        elif asset in ASSETS:
            body, mimetype = asset_bytes(asset), ASSETS[asset]
        else:
            raise ApiError(404, f"No file {asset} in the documentation page.")
        return Response(
            body,
            mimetype=mimetype,
            headers={"Cache-Control": f"public, max-age={ASSET_MAX_AGE_SECONDS}"},
        )


@functools.cache
def asset_bytes(name):
    return (swagger_ui_path / name).read_bytes()
