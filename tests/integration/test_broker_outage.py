"""The broker is away when a customer is created: the write stands, the event follows later."""

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook

from services.customers.service import CustomersService
from services.reports.service import ReportsService
from tests.support.records import customer_ids, customer_outbox
from tests.support.waiting import wait_for


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])
def test_write_succeeds_while_broker_is_down_and_event_arrives_when_it_is_back(
    crm_config, make_broker_proxy, container_factory, runner_factory
):
    broker_proxy = make_broker_proxy()
    reports = runner_factory(crm_config, ReportsService)
    reports.start()
    customers = container_factory(CustomersService, dict(crm_config, AMQP_URI=broker_proxy.uri))
    customers.start()

    broker_proxy.cut()
    with entrypoint_hook(customers, "create_customer") as create_customer:
        customer = create_customer({"name": "Ada Lovelace", "owner": "sam"})

    assert customer_ids(crm_config) == [customer["id"]]
    [(_, aggregate_id, published_at)] = customer_outbox(crm_config)
    assert (aggregate_id, published_at) == (customer["id"], None)

    with ClusterRpcProxy(crm_config) as rpc:
        assert rpc.reports.customers_by_status_owner()["total"] == 0

        broker_proxy.start()
        wait_for(
            lambda: rpc.reports.customers_by_status_owner()["total"] == 1,
            timeout=30,
            message="the relayed event in the report",
        )
        report = rpc.reports.customers_by_status_owner()
        # The customers service consumes again through the healed proxy: stopping it
        # now does not wait on a reconnection under way.
        wait_for(lambda: rpc.customers.health(), timeout=30, message="customers consuming again")
    assert report["items"] == [{"status": "lead", "owner": "sam", "customers": 1}]
    [(_, _, published_at)] = customer_outbox(crm_config)
    assert published_at is not None
    # Stopped while the proxy still carries its connection: killed by the fixtures'
    # teardown after the proxy is gone, it could hang the run.
    customers.stop()
