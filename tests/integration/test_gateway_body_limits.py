"""Every endpoint that takes a body refuses one over its limit with 413, however it is sent.

The endpoints are found from the gateway's own routes, so a new one is checked too.
"""

import re
import uuid

import pytest
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR

from gateway.service import GatewayService
from tests.support.http import assert_error

MAX_BODY = 1024
MAX_IMPORT = 4096
IMPORT = "/api/v1/customers/import"


@pytest.fixture
def crm_config(crm_config):
    return dict(crm_config, CRM_MAX_BODY_BYTES=MAX_BODY, CRM_MAX_IMPORT_BYTES=MAX_IMPORT)


def body_routes():
    """(method, path) of every endpoint that takes a body, its path values filled in."""
    for name in dir(GatewayService):
        for entrypoint in getattr(getattr(GatewayService, name), ENTRYPOINT_EXTENSIONS_ATTR, ()):
            if entrypoint.method in ("POST", "PUT", "PATCH"):
                yield entrypoint.method, re.sub(r"<[^>]+>", str(uuid.uuid4()), entrypoint.url)


def test_the_routes_are_found():
    assert ("POST", "/api/v1/customers") in set(body_routes())
    assert len(set(body_routes())) > 20


def chunks(size):
    for _ in range(size // 512):
        yield b"x" * 512


@pytest.mark.parametrize(
    "how",
    ["content-length", "chunked", "chunked with an idempotency key"],
)
def test_a_body_over_the_limit_is_413_everywhere(client, how):
    size = MAX_IMPORT * 2
    wrong = []
    for method, path in sorted(body_routes()):
        mimetype = "text/csv" if path == IMPORT else "application/json"
        headers = {"Content-Type": mimetype}
        if "key" in how:
            headers["Idempotency-Key"] = f"{method} {path}"
        data = b"x" * size if how == "content-length" else chunks(size)
        answer = client.request(method, path, data=data, headers=headers)
        if answer.status_code != 413:
            wrong.append(f"{method} {path}: {answer.status_code} {answer.text[:200]}")
        else:
            assert_error(answer, 413, "PAYLOAD_TOO_LARGE")
    assert not wrong, "\n".join(wrong)
    assert client.get("/api/v1/customers").json()["items"] == []


def csv_of(size):
    rows = "".join(f"Customer {n}\n" for n in range(size // 12))
    return ("name\n" + rows).encode()[:size].rsplit(b"\n", 1)[0] + b"\n"


def test_an_import_has_a_limit_of_its_own(client):
    text = csv_of(MAX_IMPORT - 100)
    assert len(text) > MAX_BODY
    answer = client.request("POST", IMPORT, data=text, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["created"] > 0


def test_a_multipart_import_sent_in_chunks_over_the_limit_is_413(client):
    boundary = "b0undary"

    def form():
        yield (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="c.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        yield csv_of(MAX_IMPORT * 2)
        yield f"\r\n--{boundary}--\r\n".encode()

    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    for extra in ({}, {"Idempotency-Key": "big-form"}):
        answer = client.request("POST", IMPORT, data=form(), headers={**headers, **extra})
        assert_error(answer, 413, "PAYLOAD_TOO_LARGE")
    assert client.get("/api/v1/customers").json()["items"] == []
