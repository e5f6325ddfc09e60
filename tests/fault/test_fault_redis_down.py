"""Redis stopped and started while the system works: reads answer, writes with an
Idempotency-Key are refused with a clear 503 and run when sent again, nothing is lost."""

import pytest
import requests

from gateway.service import GatewayService
from services.customers.service import CustomersService
from services.reports.service import ReportsService
from tests.support.http import Client, assert_error, created
from tests.support.records import customer_ids
from tests.support.waiting import wait_for

pytestmark = pytest.mark.fault

CUSTOMERS = "/api/v1/customers"


def keyed(key):
    return {"headers": {"Idempotency-Key": key}}


def test_a_redis_restart_keeps_reads_answering_refuses_keyed_writes_safely_and_loses_nothing(
    crm_config, runner_factory, private_redis
):
    """Simulates Redis stopped (SIGTERM, as `systemctl stop` or a container stop) and
    started again on the same port and files: a server of the test's own, with the
    append-only file on as docker-compose.yml runs it, used by both of its clients, the
    gateway (tokens, idempotency keys, rate limits) and reports (the answer cache). The
    shared Redis is left alone."""
    config = dict(crm_config, CRM_REDIS_URL=private_redis.url)
    runner_factory(config, GatewayService, CustomersService, ReportsService).start()
    client = Client(f"http://{config['CRM_GATEWAY_ADDRESS']}")
    viewer = client.as_role("viewer")
    first = client.post(CUSTOMERS, {"name": "Ada", "email": "ada@example.com"}, **keyed("ada"))
    ada = created(first)
    wait_for(lambda: client.get("/api/v1/reports/customers").json()["total"] == 1)

    private_redis.stop()
    # Reads answer: the admin token needs no Redis, the report comes from its database.
    listed = client.get(CUSTOMERS)
    assert listed.status_code == 200, listed.text
    assert [customer["id"] for customer in listed.json()["items"]] == [ada["id"]]
    report = client.get("/api/v1/reports/customers")
    assert report.status_code == 200, report.text
    assert report.json()["total"] == 1
    # An issued token is kept in Redis: it cannot be checked, which is said clearly.
    assert_error(viewer.get(CUSTOMERS), 503, "SERVICE_UNAVAILABLE")
    # A keyed write is refused before it runs; one without a key is served.
    grace = {"name": "Grace", "email": "grace@example.com"}
    assert_error(client.post(CUSTOMERS, grace, **keyed("grace")), 503, "SERVICE_UNAVAILABLE")
    assert customer_ids(config) == [ada["id"]]
    edsger = created(client.post(CUSTOMERS, {"name": "Edsger", "email": "ew@example.com"}))
    ready = requests.get(f"{client.base_url}/ready", timeout=10)
    assert ready.status_code == 503
    assert ready.json()["checks"]["redis"] != "ok"

    private_redis.start()
    # The refused write, sent again with its key, runs now.
    retried = wait_for(
        lambda: (
            (answer := client.post(CUSTOMERS, grace, **keyed("grace"))).status_code != 503
            and answer
        ),
        timeout=30,
        message="keyed writes accepted again",
    )
    grace_id = created(retried)["id"]
    # What Redis kept from before its restart is still there: the first answer, the token.
    replay = client.post(CUSTOMERS, {"name": "Ada", "email": "ada@example.com"}, **keyed("ada"))
    assert replay.status_code == 201
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.json() == ada
    assert viewer.get(CUSTOMERS).status_code == 200
    wait_for(
        lambda: "X-RateLimit-Remaining" in client.get(CUSTOMERS).headers,
        timeout=30,
        message="requests counted again",
    )

    assert sorted(customer_ids(config)) == sorted([ada["id"], edsger["id"], grace_id])
    wait_for(
        lambda: client.get("/api/v1/reports/customers").json()["total"] == 3,
        timeout=30,
        message="every customer in the report",
    )
