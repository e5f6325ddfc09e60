"""Satisfaction and service reports through the gateway, fed by real ticket events;
answers cached in Redis, and still given when Redis is away."""

import json

import redis
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.service import GatewayService
from services.customers.service import CustomersService
from services.interactions.service import InteractionsService
from services.pipeline.service import PipelineService
from services.reports.service import ReportsService
from tests.support.http import Client, assert_error, created
from tests.support.settings import REDIS_URL
from tests.support.tickets import handled_ticket
from tests.support.waiting import wait_for


def ok(response):
    assert response.status_code == 200, response.text
    return response.json()


def test_satisfaction_and_service_reports_follow_the_tickets(client):
    customer = created(client.post("/api/v1/customers", {"name": "Ada Lovelace"}))["id"]
    handled_ticket(client, customer, "kim", score=5)
    handled_ticket(client, customer, "kim", score=4, channel="phone")
    handled_ticket(client, customer, "ann", score=1)
    handled_ticket(client, customer, "ann", resolve=False)

    def satisfaction_counted():
        report = ok(client.get("/api/v1/reports/satisfaction?group_by=agent"))
        return report if report["responses"] == 3 else None

    report = wait_for(satisfaction_counted, message="three answers in the report")
    assert (report["csat_avg"], report["csat_pct"]) == (3.3333, 0.6667)
    assert [row["count"] for row in report["distribution"]] == [1, 0, 0, 1, 1]
    assert [(row["agent"], row["csat_avg"]) for row in report["groups"]] == [
        ("ann", 1.0),
        ("kim", 4.5),
    ]
    assert report["as_of"] and report["lag_seconds"] is not None
    by_channel = ok(client.get("/api/v1/reports/satisfaction?group_by=channel&agent=kim"))
    assert [(row["channel"], row["responses"]) for row in by_channel["groups"]] == [
        ("email", 1),
        ("phone", 1),
    ]
    past = ok(client.get("/api/v1/reports/satisfaction?as_of=2020-01-01T00:00:00Z"))
    assert (past["responses"], past["time_travel"]) == (0, True)

    def service_counted():
        report = ok(client.get("/api/v1/reports/service"))
        return report if report["opened"] == 4 and report["resolved"] == 3 else None

    service = wait_for(service_counted, message="four tickets in the service report")
    assert service["resolution_rate"] == 0.75
    assert service["median_first_response_seconds"] is not None
    assert service["sla_breach_rate"] == 0.0
    assert [(row["agent"], row["opened"], row["resolved"]) for row in service["by_agent"]] == [
        ("ann", 2, 1),
        ("kim", 2, 2),
    ]
    assert ok(client.get("/api/v1/reports/service?agent=ann&priority=normal"))["opened"] == 2
    assert ok(client.get("/api/v1/reports/service?from=2020-01-01&to=2020-12-31"))["opened"] == 0

    csv = client.get("/api/v1/reports/service.csv")
    assert csv.status_code == 200
    header, *rows = csv.text.splitlines()
    assert header.startswith("agent,opened,resolved,resolution_rate")
    assert len(rows) == 2
    assert client.get("/api/v1/reports/satisfaction.csv?group_by=month").status_code == 200


def test_report_queries_are_validated(client):
    for query in (
        "group_by=week",
        "channel=pigeon",
        "from=yesterday",
        "as_of=2027-01-01T00:00:00",  # no zone
        "colour=blue",
    ):
        assert_error(client.get(f"/api/v1/reports/satisfaction?{query}"), 400, "VALIDATION_ERROR")
    for query in ("priority=whenever", "to=2027-13-01", "agent="):
        assert_error(client.get(f"/api/v1/reports/service?{query}"), 400, "VALIDATION_ERROR")
    viewer = client.as_role("viewer")
    assert ok(viewer.get("/api/v1/reports/service"))["opened"] == 0
    assert_error(client.get("/api/v1/reports/service", auth=False), 401, "UNAUTHORIZED")


def cached_answers(config, report):
    """{key: answer} of the answers of `report` in Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        pattern = f"{config['CRM_REDIS_PREFIX']}:reports:answers:{report}:*"
        return {key: json.loads(client.get(key)) for key in client.scan_iter(match=pattern)}
    finally:
        client.close()


def plant(key, answer):
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.set(key, json.dumps(answer), keepttl=True)
    finally:
        client.close()


def test_reports_answer_from_redis_and_without_it(crm_config, runner_factory, redis_proxy):
    """The reports service reaches Redis through a proxy; the gateway, directly."""
    runner_factory(
        crm_config, GatewayService, CustomersService, PipelineService, InteractionsService
    ).start()
    runner_factory(dict(crm_config, CRM_REDIS_URL=redis_proxy.url), ReportsService).start()
    client = Client(f"http://{crm_config['CRM_GATEWAY_ADDRESS']}")

    def customers_counted(number):
        return lambda: ok(client.get("/api/v1/reports/customers"))["total"] == number

    created(client.post("/api/v1/customers", {"name": "Ada Lovelace"}))
    wait_for(customers_counted(1), message="the first customer in the report")
    answers = cached_answers(crm_config, "customers")
    [key] = [key for key, answer in answers.items() if answer["total"] == 1]
    # While the view stands still, the answer comes from the cache: first the one the
    # instance holds in memory, then, once it forgot it, the one in Redis. Plant one there.
    plant(key, {**answers[key], "total": 99})
    assert ok(client.get("/api/v1/reports/customers"))["total"] == 1
    with ClusterRpcProxy(crm_config) as rpc:
        assert rpc.reports.forget_answers()["forgotten"] >= 1
    assert ok(client.get("/api/v1/reports/customers"))["total"] == 99

    # A new event moves the view's watermark: the next answer is computed anew.
    created(client.post("/api/v1/customers", {"name": "Charles Babbage"}))
    wait_for(customers_counted(2), message="the second customer in the report")
    assert any(answer["total"] == 2 for answer in cached_answers(crm_config, "customers").values())

    redis_proxy.cut()
    stored = set(cached_answers(crm_config, "customers"))
    created(client.post("/api/v1/customers", {"name": "Grace Hopper"}))
    wait_for(customers_counted(3), message="the report without Redis")
    assert set(cached_answers(crm_config, "customers")) == stored  # nothing could be stored
