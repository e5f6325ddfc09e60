"""The gateway over HTTP, with every service running: what a client app sees."""

import json
import socket

import eventlet
import pytest

from crm_common.metrics import queue_depths
from gateway.service import READY_TIMEOUT_SECONDS, GatewayService
from services.customers.service import CustomersService
from services.pipeline.service import PipelineService
from services.reports.service import ReportsService
from tests.support.http import Client, assert_error
from tests.support.settings import ADMIN_TOKEN
from tests.support.waiting import wait_for


def test_health_and_ready(client):
    assert client.get("/health", auth=False).json() == {"status": "ok"}
    ready = client.get("/ready", auth=False)
    assert ready.status_code == 200
    services = ("customers", "pipeline", "interactions", "reports")
    body = ready.json()
    lag = body.pop("reports_lag_seconds")
    backlog = body.pop("outbox_backlog")
    assert body == {"status": "ready", "checks": {name: "ok" for name in (*services, "redis")}}
    # The default pipeline's event may still wait for the relay (test_metrics.py has more).
    assert set(backlog) == set(services)
    assert all(isinstance(count, int) and count >= 0 for count in backlog.values())
    # The default pipeline's event, applied at start, or none yet.
    assert lag is None or lag >= 0


def test_create_read_and_list_customers(client):
    created = client.post(
        "/api/v1/customers",
        {
            "name": "  Ada   Lovelace ",
            "email": "ADA@Example.COM",
            "phone": "+44 20 7946 0958",
            "company": "Analytical Engines",
            "owner": "sam",
            "tags": ["VIP", "vip", "math"],
            "attributes": {"tier": "gold", "seats": 12},
        },
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert created.headers["Location"] == f"/api/v1/customers/{customer['id']}"
    assert customer["name"] == "Ada Lovelace"
    assert customer["email"] == "ada@example.com"
    assert customer["phone"] == "+442079460958"
    assert customer["tags"] == ["vip", "math"]
    assert customer["status"] == "lead"

    assert client.get(f"/api/v1/customers/{customer['id']}").json() == customer

    second = client.post("/api/v1/customers", {"name": "Grace Hopper", "status": "customer"}).json()
    first_page = client.get("/api/v1/customers?limit=1").json()
    assert [item["id"] for item in first_page["items"]] == [customer["id"]]
    second_page = client.get(f"/api/v1/customers?limit=1&cursor={first_page['next_cursor']}").json()
    assert [item["id"] for item in second_page["items"]] == [second["id"]]
    assert second_page["next_cursor"] is None

    filtered = client.get("/api/v1/customers?status=customer").json()
    assert [item["id"] for item in filtered["items"]] == [second["id"]]


def test_created_customers_show_up_in_the_report(client):
    for name, owner in (("Ada", "sam"), ("Grace", "sam"), ("Alan", "kim")):
        assert client.post("/api/v1/customers", {"name": name, "owner": owner}).status_code == 201
    report = wait_for(
        lambda: (body := client.get("/api/v1/reports/customers").json())["total"] == 3 and body,
        message="three customers in the report",
    )
    assert report["items"] == [
        {"status": "lead", "owner": "kim", "customers": 1},
        {"status": "lead", "owner": "sam", "customers": 2},
    ]
    assert report["as_of"] is not None
    assert report["lag_seconds"] >= 0


def test_likely_duplicate_is_a_conflict_naming_the_existing_customer(client):
    existing = client.post("/api/v1/customers", {"name": "Ada", "email": "ada@example.com"}).json()
    conflict = client.post(
        "/api/v1/customers", {"name": "A. Lovelace", "email": " ADA@example.com"}
    )
    error = assert_error(conflict, 409, "CONFLICT")
    assert error["existing_id"] == existing["id"]
    allowed = client.post(
        "/api/v1/customers?allow_duplicate=true",
        {"name": "A. Lovelace", "email": "ada@example.com"},
    )
    assert allowed.status_code == 201


def test_missing_or_wrong_token_is_401(client):
    assert_error(client.get("/api/v1/customers", auth=False), 401, "UNAUTHORIZED")
    wrong = client.get("/api/v1/customers", auth=False, headers={"Authorization": "Bearer nope"})
    assert_error(wrong, 401, "UNAUTHORIZED")
    basic = client.get("/api/v1/customers", auth=False, headers={"Authorization": "Basic YTpi"})
    assert_error(basic, 401, "UNAUTHORIZED")
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("body", "headers", "status", "code", "field"),
    [
        ("{not json", JSON, 400, "VALIDATION_ERROR", None),
        ("[1, 2]", JSON, 400, "VALIDATION_ERROR", "_schema"),
        ('"just a string"', JSON, 400, "VALIDATION_ERROR", "_schema"),
        ("[" * 100000 + "]" * 100000, JSON, 400, "VALIDATION_ERROR", None),
        ("{}", JSON, 400, "VALIDATION_ERROR", "name"),
        ('{"name": 5}', JSON, 400, "VALIDATION_ERROR", "name"),
        ('{"name": ""}', JSON, 400, "VALIDATION_ERROR", "name"),
        ('{"name": "   "}', JSON, 400, "VALIDATION_ERROR", "name"),
        ('{"name": "Ada", "colour": "red"}', JSON, 400, "VALIDATION_ERROR", "colour"),
        ('{"name": "Ada", "email": "not-an-email"}', JSON, 400, "VALIDATION_ERROR", "email"),
        ('{"name": "Ada", "phone": "call me"}', JSON, 400, "VALIDATION_ERROR", "phone"),
        ('{"name": "Ada", "status": "vip"}', JSON, 400, "VALIDATION_ERROR", "status"),
        ('{"name": "Ada", "tags": "vip"}', JSON, 400, "VALIDATION_ERROR", "tags"),
        ('{"name": "Ada", "attributes": {"a": [1]}}', JSON, 400, "VALIDATION_ERROR", "attributes"),
        ('{"name": "Ada", "attributes": []}', JSON, 400, "VALIDATION_ERROR", "attributes"),
        ('{"name": "Ada"}', {"Content-Type": "text/plain"}, 415, "UNSUPPORTED_MEDIA_TYPE", None),
        ('{"name": "Ada"}', {}, 415, "UNSUPPORTED_MEDIA_TYPE", None),
        (b'{"name": "\xff\xfe"}', JSON, 400, "VALIDATION_ERROR", None),
        ('{"name": "Ada\\u0000"}', JSON, 400, "VALIDATION_ERROR", "name"),
        ('{"name": "Ada", "attributes": {"x": NaN}}', JSON, 400, "VALIDATION_ERROR", None),
        ('{"name": "Ada", "attributes": {"x": Infinity}}', JSON, 400, "VALIDATION_ERROR", None),
        ('{"name": "Ada", "attributes": {"x": 1e999}}', JSON, 400, "VALIDATION_ERROR", None),
        ('{"name": "' + "\u0958" * 200 + '"}', JSON, 400, "VALIDATION_ERROR", "name"),
    ],
)
def test_bad_create_requests_get_a_clear_4xx(client, body, headers, status, code, field):
    response = client.request("POST", "/api/v1/customers", data=body, headers=headers)
    error = assert_error(response, status, code)
    if field:
        assert field in error["fields"]


def test_oversized_body_is_413_and_nothing_is_created(client, crm_config):
    big = json.dumps(
        {"name": "Ada", "attributes": {"notes": "x" * crm_config["CRM_MAX_BODY_BYTES"]}}
    )
    assert_error(
        client.request("POST", "/api/v1/customers", data=big, headers=JSON),
        413,
        "PAYLOAD_TOO_LARGE",
    )
    assert client.get("/api/v1/customers").json()["items"] == []


def test_chunked_body_over_the_limit_is_413(client, crm_config):
    def chunks():
        yield b'{"name": "Ada", "notes": "'
        for _ in range(crm_config["CRM_MAX_BODY_BYTES"] // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    response = client.request("POST", "/api/v1/customers", data=chunks(), headers=JSON)
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/customers?limit=0", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?limit=501", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?limit=ten", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?status=vip", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?colour=red", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?cursor=forged", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?cursor=WyIyMDI2IiwgMV0", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers/not-a-uuid", 404, "NOT_FOUND"),
        ("/api/v1/customers/00000000-0000-4000-8000-000000000000", 404, "NOT_FOUND"),
        ("/api/v1/nothing-here", 404, "NOT_FOUND"),
        ("/api/v1/reports/customers?as_of=yesterday", 400, "VALIDATION_ERROR"),
        ("/api/v1/customers?owner=s%00m", 400, "VALIDATION_ERROR"),
        # a forged cursor whose time cannot be converted to UTC
        (
            "/api/v1/customers?cursor=WyI5OTk5LTEyLTMxVDIzOjU5OjU5LTA1OjAwIiwgIngiXQ",
            400,
            "VALIDATION_ERROR",
        ),
        (
            "/api/v1/customers?cursor=WyIwMDAxLTAxLTAxVDAwOjAwOjAwKzA1OjAwIiwgIngiXQ",
            400,
            "VALIDATION_ERROR",
        ),
    ],
)
def test_bad_reads_get_a_clear_4xx(client, path, status, code):
    assert_error(client.get(path), status, code)


def test_wrong_method_is_405(client):
    response = client.request("DELETE", "/health")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["Allow"]


def test_client_request_id_is_echoed(client):
    response = client.get("/health", headers={"X-Request-Id": "trace-42"})
    assert response.headers["X-Request-Id"] == "trace-42"


def test_ready_is_503_naming_the_service_that_does_not_answer(crm_config, runner_factory):
    runner = runner_factory(crm_config, GatewayService, CustomersService, ReportsService)
    runner.start()
    ready = Client(f"http://{crm_config['CRM_GATEWAY_ADDRESS']}").get("/ready", auth=False)
    assert ready.status_code == 503
    checks = ready.json()["checks"]
    assert checks["customers"] == checks["reports"] == checks["redis"] == "ok"
    assert "pipeline" in checks["pipeline"] and checks["pipeline"] != "ok"
    assert checks["interactions"] != "ok"
    # Unknown where the service does not answer.
    assert ready.json()["outbox_backlog"]["pipeline"] is None
    assert ready.json()["outbox_backlog"]["customers"] == 0


def test_any_spelling_of_a_customer_id_finds_it(client):
    customer = client.post("/api/v1/customers", {"name": "Ada"}).json()
    for spelling in (
        customer["id"].upper(),
        customer["id"].replace("-", ""),
        "{" + customer["id"] + "}",
    ):
        assert client.get(f"/api/v1/customers/{spelling}").json()["id"] == customer["id"]


def raw_request(address, data, read_timeout=10):
    host, port = address.split(":")
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(data)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer.split(b"\r\n", 1)[0]


def headers_for(path, extra):
    lines = [
        f"POST {path} HTTP/1.1",
        "Host: test",
        f"Authorization: Bearer {ADMIN_TOKEN}",
        "Content-Type: application/json",
        *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def test_malformed_chunked_body_is_400(client, crm_config):
    request = (
        headers_for("/api/v1/customers", ["Transfer-Encoding: chunked"])
        + b"zz\r\nnot hex\r\n0\r\n\r\n"
    )
    assert b" 400 " in raw_request(crm_config["CRM_GATEWAY_ADDRESS"], request)


def test_a_body_that_never_finishes_is_408_and_does_not_hold_the_gateway(
    client, crm_config, monkeypatch
):
    monkeypatch.setattr("gateway.http.BODY_READ_SECONDS", 0.5)
    request = headers_for("/api/v1/customers", ["Content-Length: 100"]) + b'{"name":'
    pool = eventlet.GreenPool()
    answers = list(
        pool.imap(lambda _: raw_request(crm_config["CRM_GATEWAY_ADDRESS"], request), range(12))
    )
    assert all(b" 408 " in answer for answer in answers), answers
    assert client.get("/health", auth=False).status_code == 200


def test_ready_leaves_no_health_call_waiting_for_a_service_that_is_down(crm_config, runner_factory):
    """A probe asking /ready every few seconds through a long outage must not leave a
    health call per probe in the stopped service's queue, for it to answer when back."""
    stopped = runner_factory(crm_config, PipelineService)
    stopped.start()
    stopped.stop()  # its queue stays, nobody consumes it
    runner_factory(crm_config, GatewayService).start()
    client = Client(f"http://{crm_config['CRM_GATEWAY_ADDRESS']}")
    for _ in range(3):
        assert client.get("/ready", auth=False).status_code == 503
    wait_for(
        lambda: (
            queue_depths(crm_config["AMQP_URI"], ["rpc-pipeline"])
            == [({"queue": "rpc-pipeline"}, 0)]
        ),
        timeout=READY_TIMEOUT_SECONDS + 5,
        message="the unanswered health calls to expire",
    )
