"""/openapi.json against the gateway's own routes: each one documented, as it is served.

The routes are the HTTP entrypoints of a gateway container, matched by the
router the gateway serves with; the schemas are the ones each endpoint
declares (test_gateway_declared_schemas checks that it reads those).
"""

import inspect
import uuid

import pytest
from marshmallow import Schema
from nameko.containers import ServiceContainer
from openapi_spec_validator import validate
from werkzeug.exceptions import HTTPException

from gateway import openapi
from gateway.http import ApiHandler, ApiWebServer
from gateway.service import GatewayService

DOCUMENT = openapi.document(GatewayService)
COMPONENTS = DOCUMENT["components"]
# Not started: its entrypoints are the routes the gateway would serve.
CONTAINER = ServiceContainer(GatewayService, {"AMQP_URI": "memory://"})
ENTRYPOINTS = sorted(
    (entrypoint for entrypoint in CONTAINER.entrypoints if isinstance(entrypoint, ApiHandler)),
    key=lambda entrypoint: (entrypoint.url, entrypoint.method),
)
OPERATIONS = [
    (path, method.upper(), operation)
    for path, by_method in DOCUMENT["paths"].items()
    for method, operation in by_method.items()
]
ROUTES = {route.name: route for route in openapi.routes(GatewayService)}


def router():
    server = ApiWebServer()
    for entrypoint in ENTRYPOINTS:
        server.register_provider(entrypoint)
    return server.make_url_map().bind("gateway.test")


ROUTER = router()


def served_by(path, method, operation):
    """The entrypoint the gateway routes the documented path to (its parameters filled in)."""
    for parameter in map(resolve, operation.get("parameters", [])):
        if parameter["in"] == "path":
            sample = str(uuid.uuid4()) if parameter["schema"].get("format") == "uuid" else "x"
            path = path.replace(f"{{{parameter['name']}}}", sample)
    try:
        entrypoint, _ = ROUTER.match(path, method=method)
    except HTTPException as exc:
        pytest.fail(f"{method} {path} is documented but not served: {exc}")
    return entrypoint


def test_the_document_is_valid_openapi_3():
    validate(DOCUMENT)
    assert DOCUMENT["openapi"].startswith("3.")
    assert DOCUMENT["info"]["title"] and DOCUMENT["info"]["version"] == openapi.version()
    assert DOCUMENT["servers"]


@pytest.mark.parametrize("entrypoint", ENTRYPOINTS, ids=lambda e: f"{e.method} {e.url}")
def test_every_route_is_documented_with_a_description(entrypoint):
    route = ROUTES[entrypoint.method_name]
    assert inspect.getdoc(route.endpoint), f"{route.name} needs a docstring: its summary"
    for path, _, described in route.paths():
        assert described.get("answers"), f"{route.name} needs @api(answers=...) for {path}"
    documented = [
        (path, method)
        for path, method, operation in OPERATIONS
        if served_by(path, method, operation) is entrypoint
    ]
    assert documented, f"{entrypoint.method} {entrypoint.url} is not in /openapi.json"
    assert {method for _, method in documented} == {entrypoint.method}


@pytest.mark.parametrize("operation", OPERATIONS, ids=lambda o: f"{o[1]} {o[0]}")
def test_each_operation_says_what_its_endpoint_reads_and_answers(operation):
    path, method, found = operation
    entrypoint = served_by(path, method, found)
    route = ROUTES[entrypoint.method_name]
    described = next(keywords for each, _, keywords in route.paths() if each == path)
    assert found["summary"] and found["tags"]
    assert found["operationId"].startswith(route.name)

    parameters = [resolve(parameter) for parameter in found["parameters"]]
    in_path = {p["name"] for p in parameters if p["in"] == "path"}
    assert in_path == {name for _, name in route.path_parameters}
    in_query = {p["name"]: p["required"] for p in parameters if p["in"] == "query"}
    assert in_query == fields_of(described.get("query"))
    in_header = {p["name"] for p in parameters if p["in"] == "header"}
    assert in_header == ({"Idempotency-Key"} if route.keyed else set())

    body = described.get("body")
    if body is None:
        assert "requestBody" not in found
    elif isinstance(body, openapi.Content):
        assert found["requestBody"]["content"].keys() == body.media_types.keys()
    else:
        schema = found["requestBody"]["content"]["application/json"]["schema"]
        assert component(schema)["properties"].keys() == fields_of(body).keys()
        assert set(component(schema).get("required", [])) == {
            name for name, required in fields_of(body).items() if required
        }

    for status, answer in described["answers"].items():
        response = found["responses"][str(status)]
        if isinstance(answer, type) and issubclass(answer, Schema):
            schema = response["content"]["application/json"]["schema"]
            assert component(schema)["properties"].keys() == fields_of(answer).keys()
        if status == 201 or described.get("location"):
            assert ("Location" in response["headers"]) == bool(described.get("location"))


def test_every_error_has_the_one_error_shape():
    for path, method, operation in OPERATIONS:
        errors = {s: r for s, r in operation["responses"].items() if int(s) >= 400}
        assert "414" in errors, f"{method} {path}"
        if path.startswith("/api/"):
            assert {"401", "403", "429", "503"} <= errors.keys(), f"{method} {path}"
        for status, response in errors.items():
            if path == "/ready" and status == "503":
                continue  # not an error: the readiness answer, not ready
            shared = COMPONENTS["responses"][response["$ref"].rsplit("/", 1)[1]]
            assert shared["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


RATE_LIMIT_HEADERS = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}


def test_answers_under_api_carry_the_rate_limit_headers():
    for path, method, operation in OPERATIONS:
        for status, response in operation["responses"].items():
            headers = resolve(response).get("headers", {})
            counted = path.startswith("/api/") and status not in ("401", "414")
            if "$ref" not in response:  # the shared errors say "under /api/" themselves
                assert (RATE_LIMIT_HEADERS <= headers.keys()) == counted, (method, path, status)
            if counted:
                assert RATE_LIMIT_HEADERS <= headers.keys(), (method, path, status)
                for name in RATE_LIMIT_HEADERS:
                    header = resolve(headers[name])
                    assert header["schema"]["type"] == "integer"
                    # Required only where the rate limit itself answers.
                    assert header.get("required", False) == (status == "429"), (path, status, name)
    for uncounted in ("Unauthorized", "UriTooLong"):
        assert not RATE_LIMIT_HEADERS & COMPONENTS["responses"][uncounted]["headers"].keys()
    refused = COMPONENTS["responses"]["RateLimited"]["headers"]
    assert refused["Retry-After"]["schema"] == {"type": "integer"}


def test_the_token_is_a_bearer_token_wanted_under_api_only():
    assert COMPONENTS["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "description": COMPONENTS["securitySchemes"]["bearerAuth"]["description"],
    }
    assert DOCUMENT["security"] == [{"bearerAuth": []}]
    for path, method, operation in OPERATIONS:
        assert ("security" not in operation) == path.startswith("/api/"), f"{method} {path}"


def test_operations_are_grouped_by_resource():
    tags = [tag["name"] for tag in DOCUMENT["tags"]]
    assert len(tags) == len(set(tags))
    used = {operation["tags"][0] for _, _, operation in OPERATIONS}
    assert used <= set(tags), used - set(tags)
    assert {"customers", "deals", "tickets", "reports", "auth"} <= used


def test_each_report_as_csv_has_its_own_filters():
    sales = DOCUMENT["paths"]["/api/v1/reports/sales.csv"]["get"]
    funnel = DOCUMENT["paths"]["/api/v1/reports/funnel.csv"]["get"]
    assert "text/csv" in sales["responses"]["200"]["content"]
    assert {p["name"] for p in funnel["parameters"]} >= {"pipeline_id", "as_of"}
    assert "pipeline_id" not in {p["name"] for p in sales["parameters"]}


def test_posts_of_the_client_api_take_an_idempotency_key_but_issuing_a_token():
    keyed = {
        operation["operationId"]
        for path, method, operation in OPERATIONS
        if {"$ref": "#/components/parameters/Idempotency-Key"} in operation["parameters"]
    }
    assert {"create_customer", "create_deal", "open_ticket", "import_customers"} <= keyed
    assert "issue_token" not in keyed
    assert all(
        DOCUMENT["paths"][path][method.lower()]["operationId"] not in keyed
        for path, method, _ in OPERATIONS
        if method != "POST"
    )


def test_import_takes_a_csv_file():
    body = DOCUMENT["paths"]["/api/v1/customers/import"]["post"]["requestBody"]
    assert body["content"].keys() == {"text/csv", "multipart/form-data"}


def component(schema):
    return COMPONENTS["schemas"][schema["$ref"].rsplit("/", 1)[1]]


def resolve(item):
    if "$ref" not in item:
        return item
    *_, kind, name = item["$ref"].split("/")
    return COMPONENTS[kind][name]


def fields_of(schema):
    """{name in the JSON: required} of a marshmallow schema class (or None)."""
    if schema is None:
        return {}
    return {
        field.data_key or name: field.required for name, field in schema._declared_fields.items()
    }
