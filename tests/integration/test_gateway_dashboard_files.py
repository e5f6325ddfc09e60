"""/dashboard over plain HTTP: the page and everything it loads, with the right types,
from the gateway itself, and nothing else: no other file, whatever the path says."""

import http.client
import re
from urllib.parse import urlsplit

import pytest

from tests.support.http import assert_error

JS = "text/javascript; charset=utf-8"


def test_the_page_is_public_html_that_loads_only_from_the_gateway(client):
    page = client.get("/dashboard", auth=False)
    assert page.status_code == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert "/dashboard/vendor/chart.umd.min.js" in loaded
    assert all(url.startswith(("/dashboard/", "data:")) for url in loaded), loaded


def test_every_file_the_page_loads_is_served_with_its_content_type(client):
    page = client.get("/dashboard", auth=False).text
    urls = [url for url in re.findall(r'(?:src|href)="([^"]+)"', page) if url.startswith("/")]
    modules = ["/dashboard/dashboard.js"]
    while modules:  # the scripts import each other as modules: follow them all
        url = modules.pop()
        script = client.get(url, auth=False)
        assert (script.status_code, script.headers["Content-Type"]) == (200, JS), url
        for name in re.findall(r'from "\./([^"]+)"', script.text):
            if f"/dashboard/{name}" not in urls:
                urls.append(f"/dashboard/{name}")
                modules.append(f"/dashboard/{name}")
    types = {url: client.get(url, auth=False).headers["Content-Type"] for url in urls}
    assert types["/dashboard/dashboard.css"] == "text/css; charset=utf-8"
    assert {types[url] for url in urls if url.endswith(".js")} == {JS}
    assert {"/dashboard/cards.js", "/dashboard/format.js", "/dashboard/shapes.js"} <= set(urls)


def test_the_chart_library_comes_from_the_npm_install(client):
    library = client.get("/dashboard/vendor/chart.umd.min.js", auth=False)
    assert library.status_code == 200, "run `make setup` (npm ci) to install Chart.js"
    assert library.headers["Content-Type"] == JS
    assert "Chart.js v4" in library.text[:200]


def test_an_unchanged_file_is_not_sent_again(client):
    first = client.get("/dashboard/dashboard.js", auth=False)
    assert first.headers["Cache-Control"] == "no-cache" and first.headers["ETag"]
    again = client.get(
        "/dashboard/dashboard.js", auth=False, headers={"If-None-Match": first.headers["ETag"]}
    )
    assert (again.status_code, again.content) == (304, b"")


@pytest.mark.parametrize(
    "path",
    [
        "/dashboard/nothing.js",
        "/dashboard/package.json",
        "/dashboard/package-lock.json",
        "/dashboard/node_modules/chart.js/package.json",
        "/dashboard/node_modules/chart.js/dist/chart.umd.min.js",
        "/dashboard/vendor/chart.js",
        "/dashboard/.gitignore",
        "/dashboard/dashboard",
        "/dashboard/index.html/",
    ],
)
def test_what_is_not_one_of_the_dashboards_files_is_404(client, path):
    assert_error(client.get(path, auth=False), 404, "NOT_FOUND")


@pytest.mark.parametrize(
    "raw_path",
    [
        "/dashboard/../pyproject.toml",
        "/dashboard/../../../../etc/passwd",
        "/dashboard/..%2f..%2fpyproject.toml",
        "/dashboard/%2e%2e/%2e%2e/pyproject.toml",
        "/dashboard/vendor/../../static_files.py",
        "/dashboard/%2fetc%2fpasswd",
        "/dashboard//etc/passwd",
        "/dashboard/..\\..\\pyproject.toml",
    ],
)
def test_no_path_reaches_a_file_outside_the_dashboard(client, raw_path):
    """Sent exactly as written: a client library would tidy the dots away first."""
    address = urlsplit(client.base_url)
    connection = http.client.HTTPConnection(address.hostname, address.port, timeout=10)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    # Werkzeug answers doubled slashes with a redirect (308) to the path without them.
    assert response.status in (404, 308), body
    assert response.getheader("Content-Type") == "application/json"
    assert b"root:" not in body and b"[project]" not in body


def test_the_page_is_only_read(client):
    response = client.post("/dashboard", {}, auth=False)
    error = assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert error["message"]
    assert "GET" in response.headers["Allow"]
