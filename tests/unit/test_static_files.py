"""StaticFiles: which names reach a file, and what the answer says about it."""

import pytest
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway.http import ApiError
from gateway.static_files import StaticFiles


def request(headers=None):
    return Request(EnvironBuilder(path="/x", headers=headers or {}).get_environ())


@pytest.fixture
def files(tmp_path):
    folder = tmp_path / "site"
    (folder / "sub").mkdir(parents=True)
    (folder / "index.html").write_text("<p>page</p>")
    (folder / "app.js").write_text("export const x = 1;")
    (folder / "style.css").write_text("p {}")
    (folder / "notes.txt").write_text("private")
    (folder / ".hidden.js").write_text("hidden")
    (folder / "sub" / "deep.js").write_text("deep")
    (tmp_path / "secret.js").write_text("secret")
    (folder / "escape.js").symlink_to(tmp_path / "secret.js")
    library = tmp_path / "lib" / "chart.js"
    library.parent.mkdir()
    library.write_text("chart")
    return StaticFiles(folder, {"vendor/chart.js": library}, page_headers={"X-Page": "yes"})


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("style.css", "text/css; charset=utf-8"),
        ("vendor/chart.js", "text/javascript; charset=utf-8"),
    ],
)
def test_own_and_mapped_files_are_served_with_their_type(files, name, content_type):
    response = files.response(request(), name)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_page_headers_go_with_html_only(files):
    assert files.response(request(), "index.html").headers["X-Page"] == "yes"
    assert "X-Page" not in files.response(request(), "app.js").headers


@pytest.mark.parametrize(
    "name",
    [
        "missing.js",
        "notes.txt",  # an extension not served
        ".hidden.js",
        "sub/deep.js",  # only the folder's own files, no subfolders
        "escape.js",  # a symlink out of the folder
        "../secret.js",
        "..%2fsecret.js",
        "/etc/passwd",
        "vendor/other.js",
        "index.html/",
        "",
    ],
)
def test_anything_else_is_404(files, name):
    with pytest.raises(ApiError) as raised:
        files.response(request(), name)
    assert raised.value.status == 404


def test_a_current_copy_gets_304(files):
    etag = files.response(request(), "app.js").headers["ETag"]
    again = files.response(request({"If-None-Match": etag}), "app.js")
    assert again.status_code == 304
