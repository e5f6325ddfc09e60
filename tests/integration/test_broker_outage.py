"""The broker is away when a customer is created: the write stands, the event follows later."""

from urllib.parse import urlsplit, urlunsplit

import pytest
from nameko.standalone.rpc import ClusterRpcProxy
from nameko.testing.services import entrypoint_hook
from sqlalchemy import create_engine, select

from crm_common.config import db_url_key
from services.customers.models import Customer, OutboxEvent
from services.customers.service import CustomersService
from services.reports.service import ReportsService
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import free_port, wait_for


@pytest.fixture
def broker_proxy(crm_config):
    broker = urlsplit(crm_config["AMQP_URI"])
    proxy = TcpProxy(free_port(), broker.hostname, broker.port or 5672)
    proxy.start()
    proxy.uri = urlunsplit(
        broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.args[0]}")
    )
    yield proxy
    proxy.cut()


def outbox_rows(config):
    engine = create_engine(config[db_url_key("customers")])
    try:
        with engine.connect() as connection:
            return connection.execute(
                select(OutboxEvent.aggregate_id, OutboxEvent.published_at)
            ).all()
    finally:
        engine.dispose()


def customer_ids(config):
    engine = create_engine(config[db_url_key("customers")])
    try:
        with engine.connect() as connection:
            return connection.scalars(select(Customer.id)).all()
    finally:
        engine.dispose()


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])
def test_write_succeeds_while_broker_is_down_and_event_arrives_when_it_is_back(
    crm_config, broker_proxy, container_factory, runner_factory
):
    reports = runner_factory(crm_config, ReportsService)
    reports.start()
    customers = container_factory(CustomersService, dict(crm_config, AMQP_URI=broker_proxy.uri))
    customers.start()

    broker_proxy.cut()
    with entrypoint_hook(customers, "create_customer") as create_customer:
        customer = create_customer({"name": "Ada Lovelace", "owner": "sam"})

    assert customer_ids(crm_config) == [customer["id"]]
    [(aggregate_id, published_at)] = outbox_rows(crm_config)
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
    [(_, published_at)] = outbox_rows(crm_config)
    assert published_at is not None
    # Stopped while the proxy still carries its connection: killed by the fixtures'
    # teardown after the proxy is gone, it could hang the run.
    customers.stop()
