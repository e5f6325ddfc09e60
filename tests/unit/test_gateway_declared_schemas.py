"""Each endpoint reads its query and body with the schemas its `@api` declares.

/openapi.json is built from the declarations; this holds them to the code: every
endpoint is called once, its services faked, and the schemas it loads are recorded.
"""

import sys
import uuid
from unittest import mock

import pytest
from nameko.testing.services import worker_factory
from werkzeug.test import EnvironBuilder

from gateway import http, openapi
from gateway.auth import Principal
from gateway.service import GatewayService

READERS = {"read_query": "query", "read_json": "body", "read_optional_json": "body"}
CONFIG = {
    "CRM_MAX_BODY_BYTES": 1 << 20,
    "CRM_MAX_IMPORT_BYTES": 1 << 20,
    "CRM_RPC_TIMEOUT": 1,
    "CRM_IMPORT_TIMEOUT": 1,
}
PATHS = [
    (route, path, described)
    for route in openapi.routes(GatewayService)
    for path, _, described in route.paths()
]


@pytest.mark.parametrize(
    ("route", "path", "described"), PATHS, ids=[f"{r.method} {p}" for r, p, _ in PATHS]
)
def test_the_endpoint_reads_what_it_declares(route, path, described):
    read = []

    def recording_load(schema, payload):
        reader = sys._getframe(1).f_code.co_name
        read.append((READERS.get(reader, reader), type(schema)))
        return mock.MagicMock()

    gateway = worker_factory(GatewayService, config=CONFIG)
    gateway.authenticate = mock.Mock(return_value=Principal(subject="admin", role="admin"))
    gateway.rpc = mock.MagicMock()
    # No token, rate limit or Idempotency-Key to pass: straight to the endpoint.
    gateway.serve = lambda request, respond, idempotency_key: respond()
    with mock.patch.object(http, "load", recording_load):
        getattr(gateway, route.name)(request_for(route, path, described), **values(route, path))

    declared = [
        (part, described[part])
        for part in ("query", "body")
        if isinstance(described.get(part), type)
    ]
    assert read == declared


def request_for(route, path, described):
    body = described.get("body")
    if body is openapi.CSV_UPLOAD:
        options = {"data": "name\nAda\n", "content_type": "text/csv"}
    elif body is not None:
        options = {"json": {}}
    else:
        options = {}
    return EnvironBuilder(path=path, method=route.method, **options).get_request()


def values(route, path):
    """The path's values as the router gives them to the endpoint."""
    pattern = openapi.PATH_PARAMETER.sub(r"{\2}", route.rule)
    found = {}
    for converter, name in openapi.PATH_PARAMETER.findall(route.rule):
        if f"{{{name}}}" not in path:  # a case of the route: its value is in the path
            prefix, suffix = pattern.split(f"{{{name}}}")
            found[name] = path.removeprefix(prefix).removesuffix(suffix)
        else:
            found[name] = str(uuid.uuid4()) if converter == "id" else "potential"
    return found
