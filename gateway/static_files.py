"""Files the gateway hands out as they are, such as the dashboard's page and scripts.

Only two kinds of name are ever served: a plain file name in the folder itself
(no subfolders, no hidden files) with a known extension, and the few extra
names mapped one by one to a file elsewhere (a library installed by npm).
Anything else is a 404 in the API's error shape, so no request can reach a
file outside those, whatever dots or escapes its path holds.
"""

import hashlib
import re
from pathlib import Path

from werkzeug.wrappers import Response

from gateway.http import ApiError

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
_PLAIN_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+$")
# The browser asks again each time and gets a 304 while the file is unchanged:
# a new release is seen at once, and an unchanged file costs no body.
COMMON_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


class StaticFiles:
    def __init__(self, folder, mapped=None, page_headers=None):
        """`folder`'s own files; `mapped`: {name: path} served besides them;
        `page_headers`: added to every HTML answer (a Content-Security-Policy, say)."""
        self.folder = Path(folder).resolve()
        self.mapped = {name: Path(path) for name, path in (mapped or {}).items()}
        self.page_headers = page_headers or {}

    def path_of(self, name):
        """The file `name` stands for, or None if it is not one of ours."""
        if name in self.mapped:
            return self.mapped[name]
        if not _PLAIN_NAME.match(name):
            return None
        path = self.folder / name
        # A symlink in the folder could point anywhere; serve only what stays inside.
        return path if path.resolve().parent == self.folder else None

    def response(self, request, name):
        """The file as an HTTP answer (304 when the caller's copy is current); 404 otherwise."""
        path = self.path_of(name)
        content_type = CONTENT_TYPES.get(path.suffix) if path else None
        if content_type is None or not path.is_file():
            raise ApiError(404, f"No file {name!r} here.")
        body = path.read_bytes()
        headers = dict(COMMON_HEADERS)
        if path.suffix == ".html":
            headers.update(self.page_headers)
        response = Response(body, content_type=content_type, headers=headers)
        response.set_etag(hashlib.sha256(body).hexdigest()[:32])
        return response.make_conditional(request)
