"""Metrics, /ready and log lines as an operator sees them, with every service running.

The services run in this test process, sharing one metrics port: every series
carries a `service` label, and counters are compared before and after, since
the registry lives as long as the process.
"""

import json
import logging
from datetime import timedelta

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from crm_common.config import db_url_key
from crm_common.envelope import make_envelope, utcnow
from crm_common.logs import JsonFormatter
from gateway.service import GatewayService
from services.customers.events import CustomerErased
from services.customers.models import OutboxEvent
from tests.integration.conftest import ALL_SERVICES
from tests.support.http import Client
from tests.support.waiting import free_port, wait_for

SERVICES = ("customers", "pipeline", "interactions", "reports")


@pytest.fixture
def system(crm_config, runner_factory):
    """(a gateway client, the /metrics URL) of every service run with a metrics port."""
    config = dict(crm_config, CRM_METRICS_PORT=free_port())
    runner_factory(config, GatewayService, *ALL_SERVICES).start()
    client = Client(f"http://{config['CRM_GATEWAY_ADDRESS']}")
    return client, f"http://127.0.0.1:{config['CRM_METRICS_PORT']}/metrics", config


def scrape(url):
    """{(sample name, frozenset of labels): value} of one scrape."""
    response = requests.get(url, timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0)


def test_a_request_served_moves_the_gateways_and_the_services_metrics(system):
    client, metrics_url, _ = system
    before = scrape(metrics_url)
    created = client.post("/api/v1/customers", {"name": "Ada", "email": "ada@example.com"})
    assert created.status_code == 201
    assert client.get(f"/api/v1/customers/{created.json()['id']}").status_code == 200
    assert client.get("/no/such/page").status_code == 404
    after = scrape(metrics_url)

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    http = {"service": "gateway"}
    assert moved("crm_http_requests_total", **http, method="POST", route="/api/v1/customers",
                 status="201") == 1  # fmt: skip
    one = "/api/v1/customers/<id:customer_id>"
    assert moved("crm_http_requests_total", **http, method="GET", route=one, status="200") == 1
    # A path nobody routes is one series, whatever the path.
    assert moved("crm_http_requests_total", **http, method="GET", route="unmatched",
                 status="404") == 1  # fmt: skip
    assert moved("crm_http_request_duration_seconds_count", **http, method="GET", route=one) == 1
    # The service's own latency of the call, and the gateway's wait for it.
    assert moved("crm_rpc_duration_seconds_count", service="customers",
                 method="create_customer", outcome="ok") == 1  # fmt: skip
    assert moved("crm_rpc_call_duration_seconds_count", service="gateway", target="customers",
                 method="create_customer", outcome="ok") == 1  # fmt: skip


def test_an_event_published_and_consumed_moves_both_counters(system):
    client, metrics_url, _ = system
    before = scrape(metrics_url)
    assert client.post("/api/v1/customers", {"name": "Ada"}).status_code == 201

    def consumed():
        after = scrape(metrics_url)
        applied = {"service": "reports", "event_type": "customer_created", "outcome": "applied"}
        return (
            value(after, "crm_events_consumed_total", **applied)
            - value(before, "crm_events_consumed_total", **applied)
        ) and after

    after = wait_for(consumed, message="reports to count the event applied")
    published = {"service": "customers", "event_type": "customer_created"}
    assert (
        value(after, "crm_events_published_total", **published)
        - value(before, "crm_events_published_total", **published)
        == 1
    )
    # Read at scrape time: nothing waits anywhere once the event is through.
    for service in SERVICES:
        assert ("crm_outbox_backlog", frozenset({("service", service)})) in after
    queue = "evt-customers-customer_created--reports.apply_customer_created"
    assert value(after, "crm_consumer_queue_messages", service="reports", queue=queue) == 0
    depth = ("crm_consumer_queue_messages", frozenset({("service", "reports"), ("queue", queue)}))
    assert depth in after
    assert value(after, "crm_reports_view_lag_seconds", service="reports", view="customers") >= 0
    assert (
        "crm_reports_view_lag_seconds",
        frozenset({("service", "reports"), ("view", "customers")}),
    ) in after


def test_ready_and_metrics_show_an_unpublished_event_and_the_reports_lag(system):
    client, metrics_url, config = system
    # The default pipeline's event, written at the first start, goes out.
    wait_for(
        lambda: (
            client.get("/ready", auth=False).json()["outbox_backlog"] == dict.fromkeys(SERVICES, 0)
        ),
        message="every outbox to drain",
    )

    # An event committed but not yet due for the relay (it occurred "later"), as after a
    # broker outage: the backlog shows it until it goes out.
    envelope = make_envelope(
        event_type="customer_erased",
        producer="customers",
        aggregate_id="00000000-0000-4000-8000-000000000001",
        sequence=1,
        data={
            "customer_id": "00000000-0000-4000-8000-000000000001",
            "erased_at": utcnow().isoformat(),
        },
        data_schema=CustomerErased(),
    )
    engine = create_engine(config[db_url_key("customers")])
    try:
        with Session(engine) as session:
            session.add(
                OutboxEvent(
                    event_id=envelope["event_id"],
                    event_type=envelope["event_type"],
                    aggregate_id=envelope["aggregate_id"],
                    sequence=1,
                    occurred_at=utcnow() + timedelta(days=1),
                    body=envelope,
                )
            )
            session.commit()
    finally:
        engine.dispose()
    ready = client.get("/ready", auth=False).json()
    assert ready["status"] == "ready"
    assert ready["outbox_backlog"] == {**dict.fromkeys(SERVICES, 0), "customers": 1}
    assert value(scrape(metrics_url), "crm_outbox_backlog", service="customers") == 1

    # The reports' lag: a number once they applied an event.
    assert client.post("/api/v1/customers", {"name": "Ada"}).status_code == 201
    wait_for(
        lambda: client.get("/api/v1/reports/customers").json()["total"] == 1,
        message="the customer in the report",
    )
    lag = client.get("/ready", auth=False).json()["reports_lag_seconds"]
    assert isinstance(lag, float) and lag >= 0


class JsonLines(logging.Handler):
    """The lines `crm run` would print, as dicts."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.formatter = JsonFormatter("test")
        self.lines = []

    def emit(self, record):
        self.lines.append(json.loads(self.format(record)))


def test_the_lines_of_a_request_carry_its_id_and_those_of_an_event_its_event_id(system, caplog):
    client, _, _ = system
    caplog.set_level(logging.INFO)
    captured = JsonLines()
    logging.getLogger().addHandler(captured)
    try:
        created = client.post(
            "/api/v1/customers", {"name": "Ada"}, headers={"X-Request-Id": "trace-ada-1"}
        )
        assert created.status_code == 201
        wait_for(
            lambda: any(
                line.get("message") == "applied customer_created" for line in captured.lines
            ),
            message="reports to log the event applied",
        )
    finally:
        logging.getLogger().removeHandler(captured)
    of_request = [line for line in captured.lines if line.get("request_id") == "trace-ada-1"]
    assert {line["logger"] for line in of_request} >= {"gateway.http", "crm.rpc"}
    [applied] = [line for line in captured.lines if line["message"] == "applied customer_created"]
    assert applied["event_id"] and applied["aggregate_id"] == created.json()["id"]
