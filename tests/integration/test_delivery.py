"""Delivery edge cases: late subscribers, poison events, expired calls, racing writers."""

import subprocess
import sys

import eventlet
import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import func, select

from crm_common.envelope import make_envelope
from gateway.service import GatewayService
from services.customers.service import CustomersService
from services.reports import catchup
from services.reports.models import AppliedEvent, ViewState
from services.reports.service import ReportsService
from services.reports.views import CUSTOMERS_VIEW
from tests.support.settings import ADMIN_TOKEN
from tests.support.streams import db_scalar, publish
from tests.support.waiting import wait_for


def reports_db(config, statement):
    return db_scalar(config, "reports", statement)


def total(rpc):
    return rpc.reports.customers_by_status_owner()["total"]


def test_reports_started_late_catch_up_from_the_customers_log(crm_config, runner_factory):
    customers = runner_factory(crm_config, CustomersService)
    customers.start()
    with ClusterRpcProxy(crm_config) as rpc:
        # No reports queue exists yet: the broker drops these events.
        for name in ("Ada", "Grace", "Alan"):
            rpc.customers.create_customer({"name": name, "owner": "sam"})
        runner_factory(crm_config, ReportsService).start()
        wait_for(lambda: total(rpc) == 3, message="the three earlier customers in the report")
        rpc.customers.create_customer(
            {"name": "Barbara", "owner": "sam"}
        )  # live, through the broker
        wait_for(lambda: total(rpc) == 4, message="the live customer in the report")
    assert reports_db(crm_config, select(func.count()).select_from(AppliedEvent)) == 4


def test_reports_whose_first_catch_up_found_a_producer_down_ask_again_soon(
    crm_config, runner_factory, monkeypatch
):
    """The catch-up's interval here is an hour: a first run that found customers not
    answering must not leave the events the broker dropped missing for that long."""
    monkeypatch.setattr(catchup, "FETCH_TIMEOUT_SECONDS", 0.5)
    customers = runner_factory(crm_config, CustomersService)
    customers.start()
    with ClusterRpcProxy(crm_config) as rpc:
        # No reports queue exists yet: the broker drops these events.
        for name in ("Ada", "Grace"):
            rpc.customers.create_customer({"name": name, "owner": "sam"})
        customers.stop()
        runner_factory(crm_config, ReportsService).start()
        eventlet.sleep(2)  # the first catch-up runs, and its question to customers expires
        assert total(rpc) == 0
        runner_factory(crm_config, CustomersService).start()
        wait_for(lambda: total(rpc) == 2, timeout=20, message="the earlier customers")


@pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])
def test_a_redelivered_event_is_applied_once(crm_config, runner_factory):
    runner_factory(crm_config, CustomersService, ReportsService).start()
    with ClusterRpcProxy(crm_config) as rpc:
        rpc.customers.create_customer({"name": "Ada", "owner": "kim"})
        wait_for(lambda: total(rpc) == 1, message="the customer in the report")
        [event] = rpc.customers.events_since(None, 10)["events"]
        for _ in range(3):  # a consumer crashed before its ack, three times over
            publish(crm_config, event)
        rpc.customers.create_customer({"name": "Bob", "owner": "kim"})
        wait_for(lambda: total(rpc) == 2, message="the second customer in the report")
        # Give the repeats every chance to be (wrongly) applied before counting.
        wait_for(lambda: rabbit_queue_is_empty(crm_config), message="the reports queue to drain")
    assert reports_db(crm_config, select(func.count()).select_from(AppliedEvent)) == 2
    # The customers view's count; segments keep a row of their own once computed.
    customers_view = select(ViewState.events_applied).where(ViewState.view == CUSTOMERS_VIEW)
    assert reports_db(crm_config, customers_view) == 2


def rabbit_queue_is_empty(config):
    api = "http://127.0.0.1:15672/api/queues/{}/{}".format(
        config["AMQP_URI"].rsplit("/", 1)[1],
        "evt-customers-customer_created--reports.apply_customer_created",
    )
    queue = requests.get(api, auth=("guest", "guest"), timeout=5).json()
    return queue.get("messages", 1) == 0 and queue.get("messages_unacknowledged", 1) == 0


# PostgreSQL refuses text longer than its column; SQLite would store it.
@pytest.mark.parametrize("db_kind", ["postgres"])
def test_an_event_that_can_never_apply_is_a_dead_letter_and_the_next_one_flows(
    crm_config, runner_factory
):
    runner_factory(crm_config, CustomersService, ReportsService).start()
    poison = make_envelope(
        event_type="customer_created",
        producer="customers",
        aggregate_id="c-poison",
        sequence=1,
        data={
            "customer_id": "c-poison",
            "status": "lead",
            "owner": "x" * 500,  # longer than stored
            "created_at": "2026-01-31T12:00:00+00:00",
        },
    )
    publish(crm_config, poison)
    publish(crm_config, {"not": "an envelope"})
    with ClusterRpcProxy(crm_config) as rpc:
        rpc.customers.create_customer({"name": "Ada", "owner": "sam"})
        wait_for(lambda: total(rpc) == 1, message="the valid customer in the report")
        wait_for(lambda: rabbit_queue_is_empty(crm_config), message="nothing left looping")
        letters = rpc.reports.list_dead_letters({"status": "dead"})["items"]
    kinds = sorted((letter["kind"], letter["event_id"]) for letter in letters)
    assert kinds == [("invalid", None), ("permanent", poison["event_id"])]
    assert "value too long" in next(x["error"] for x in letters if x["kind"] == "permanent")


def test_a_call_answered_503_does_not_run_later(crm_config, container_factory, runner_factory):
    config = dict(crm_config, CRM_RPC_TIMEOUT=1.0)
    runner_factory(config, GatewayService).start()
    customers = container_factory(CustomersService, config)
    customers.start()
    customers.stop()  # its queue stays, no one consumes it

    answer = requests.post(
        f"http://{config['CRM_GATEWAY_ADDRESS']}/api/v1/customers",
        json={"name": "Queued Ghost"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=10,
    )
    assert answer.status_code == 503

    eventlet.sleep(1.5)  # past the call's expiry
    container_factory(CustomersService, config).start()
    with ClusterRpcProxy(config) as rpc:
        eventlet.sleep(1)
        assert rpc.customers.list_customers({})["items"] == []


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_racing_creates_with_one_email_make_one_customer(crm_config, runner_factory):
    crm_config = dict(crm_config, max_workers=20)
    runner_factory(crm_config, CustomersService).start()
    with ClusterRpcProxy(crm_config) as rpc:
        calls = [
            rpc.customers.create_customer.call_async(
                {"name": f"Ada {n}", "email": "ada@example.com"}
            )
            for n in range(10)
        ]
        created, refused = [], []
        for call in calls:
            try:
                created.append(call.result()["id"])
            except Exception as exc:  # the gateway's error table may have mapped it
                refused.append(str(exc))
    assert len(created) == 1
    assert len(refused) == 9
    assert all("likely the same (email match)" in message for message in refused)


def test_instances_starting_at_once_migrate_one_at_a_time(tmp_path):
    env = {"CRM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "crm_common.cli", "migrate", "customers", "reports"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    for process in processes:
        output, _ = process.communicate(timeout=120)
        assert process.returncode == 0, output
