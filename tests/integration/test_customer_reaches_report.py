"""A customer created over RPC reaches the reports view, on SQLite and on PostgreSQL."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from services.customers.service import CustomersService
from services.reports.service import ReportsService
from tests.support.waiting import wait_for

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])


@pytest.fixture
def system(crm_config, runner_factory):
    runner = runner_factory(crm_config, CustomersService, ReportsService)
    runner.start()
    with ClusterRpcProxy(crm_config) as rpc:
        yield rpc


def report_total(rpc):
    return rpc.reports.customers_by_status_owner()["total"]


def test_created_customer_shows_up_in_the_report(system):
    rpc = system
    first = rpc.customers.create_customer({"name": "Ada Lovelace", "owner": "sam"})
    rpc.customers.create_customer({"name": "Grace Hopper", "owner": "sam", "status": "customer"})
    rpc.customers.create_customer({"name": "Alan Turing"})

    wait_for(lambda: report_total(rpc) == 3, message="three customers in the report")
    report = rpc.reports.customers_by_status_owner()
    assert report["items"] == [
        {"status": "customer", "owner": "sam", "customers": 1},
        {"status": "lead", "owner": None, "customers": 1},
        {"status": "lead", "owner": "sam", "customers": 1},
    ]
    assert report["as_of"] >= first["created_at"]
    assert report["lag_seconds"] >= 0

    assert rpc.customers.get_customer(first["id"])["name"] == "Ada Lovelace"


def test_customer_event_is_in_the_producers_log(system):
    rpc = system
    customer = rpc.customers.create_customer({"name": "Ada", "email": "ADA@Example.com"})
    page = rpc.customers.events_since(None, 10)
    [event] = page["events"]
    assert event["event_type"] == "customer_created"
    assert event["aggregate_id"] == customer["id"]
    assert event["sequence"] == 1
    assert event["data"]["email"] == "ada@example.com"
    assert rpc.customers.events_since(page["next_cursor"], 10)["events"] == []
