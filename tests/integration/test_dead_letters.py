"""Events a consumer cannot apply end as dead letters, never loop, never hold the queue;
an admin lists and replays them; a database outage is not a reason to give up on one."""

import argparse
import io
from urllib.parse import quote

import pytest
import requests
from nameko.standalone.rpc import ClusterRpcProxy
from sqlalchemy import func, select
from sqlalchemy.engine import make_url

from crm_common import dead_letter_cli
from crm_common.config import db_url_key
from gateway.service import GatewayService
from services.customers.service import CustomersService
from services.reports import service as reports_service
from services.reports.models import AppliedEvent, DeadLetter
from services.reports.service import ReportsService
from tests.integration.conftest import ALL_SERVICES
from tests.support.http import Client, assert_error
from tests.support.settings import RABBIT_API_URI
from tests.support.streams import customer_created, db_scalar, publish
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import free_port, wait_for

CUSTOMER_CREATED = ("customers", "customer_created")
ADMIN = "/api/v1/admin/dead-letters"


@pytest.fixture
def retry_config(crm_config):
    """Quick retries, so that a test sees an event's last try."""
    return dict(crm_config, CRM_EVENT_MAX_ATTEMPTS=3, CRM_EVENT_RETRY_SECONDS=0.2)


def reports_scalar(config, statement):
    return db_scalar(config, "reports", statement)


def total(client):
    return client.get("/api/v1/reports/customers").json()["total"]


def queue_state(config, queue):
    vhost = quote(config["AMQP_URI"].rsplit("/", 1)[1], safe="")
    url = f"{RABBIT_API_URI.rstrip('/')}/api/queues/{vhost}/{queue}"
    return requests.get(url, timeout=5).json()


def reports_queue_is_empty(config):
    queue = queue_state(config, "evt-customers-customer_created--reports.apply_customer_created")
    return queue.get("messages", 1) == 0 and queue.get("messages_unacknowledged", 1) == 0


def dead(client, service="reports", **query):
    answer = client.get(f"{ADMIN}/{service}", params={"status": "dead", **query})
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_poison_messages_become_dead_letters_and_later_good_ones_are_applied(
    retry_config, runner_factory, monkeypatch
):
    real_effect, schema = reports_service.APPLIERS[CUSTOMER_CREATED]

    def buggy(session, envelope):
        if envelope["data"]["owner"] == "odd":
            raise KeyError("territory")  # a bug on data the code did not expect
        if envelope["data"]["owner"] == "flaky":
            raise RuntimeError("the neighbour did not answer")  # may pass: retried
        real_effect(session, envelope)

    monkeypatch.setitem(reports_service.APPLIERS, CUSTOMER_CREATED, (buggy, schema))
    runner_factory(retry_config, GatewayService, *ALL_SERVICES).start()
    client = Client(f"http://{retry_config['CRM_GATEWAY_ADDRESS']}")

    odd, flaky = customer_created("c-odd", owner="odd"), customer_created("c-flaky", owner="flaky")
    publish(retry_config, {"not": "an envelope"})
    publish(retry_config, odd)
    publish(retry_config, flaky)
    for n in range(3):
        publish(retry_config, customer_created(f"c-good-{n}"))

    wait_for(lambda: total(client) == 3, message="the good events behind the poison applied")
    wait_for(lambda: reports_queue_is_empty(retry_config), message="nothing left looping")
    letters = wait_for(
        lambda: (found := dead(client)) and len(found) == 3 and found,
        message="three dead letters, the flaky one after its last try",
    )
    by_event = {letter["event_id"]: letter for letter in letters}
    assert by_event[None]["kind"] == "invalid"
    assert "event_id" in by_event[None]["error"]
    assert (by_event[odd["event_id"]]["kind"], by_event[odd["event_id"]]["attempts"]) == (
        "permanent",
        1,
    )
    assert by_event[odd["event_id"]]["error"] == "KeyError: 'territory'"
    assert by_event[flaky["event_id"]]["attempts"] == 3  # CRM_EVENT_MAX_ATTEMPTS
    for letter in letters:
        assert letter["service"] == "reports"
        assert letter["handler"] == "apply_customer_created"

    summary = client.get(ADMIN).json()["services"]
    assert {"service": "reports", "dead": 3, "retrying": 0} == {
        key: value
        for key, value in next(s for s in summary if s["service"] == "reports").items()
        if key != "oldest_failed_at"
    }
    one = client.get(f"{ADMIN}/reports/{by_event[odd['event_id']]['id']}")
    assert one.json()["body"] == odd

    # Replayed before the fix: it fails again and stays, with the new error.
    again = client.post(f"{ADMIN}/reports/{by_event[odd['event_id']]['id']}/replay", None)
    assert again.status_code == 200, again.text
    assert again.json()["outcome"] == "failed"
    assert (again.json()["letter"]["status"], again.json()["letter"]["attempts"]) == ("dead", 2)

    # The fix is deployed: replaying every dead letter applies each once.
    monkeypatch.setitem(reports_service.APPLIERS, CUSTOMER_CREATED, (real_effect, schema))
    replayed = client.post(f"{ADMIN}/reports/replay", {})
    assert replayed.status_code == 200, replayed.text
    outcomes = {result["id"]: result["outcome"] for result in replayed.json()["results"]}
    assert outcomes == {
        by_event[None]["id"]: "failed",  # still not an event: nothing can fix that
        by_event[odd["event_id"]]["id"]: "applied",
        by_event[flaky["event_id"]]["id"]: "applied",
    }
    assert total(client) == 5
    assert [letter["id"] for letter in dead(client)] == [by_event[None]["id"]]

    # The producer sends one of them again: the inbox skips it.
    publish(retry_config, odd)
    publish(retry_config, customer_created("c-after"))
    wait_for(lambda: total(client) == 6, message="the event after the repeat")
    wait_for(lambda: reports_queue_is_empty(retry_config), message="the repeat consumed")
    applied = select(func.count()).where(AppliedEvent.event_type == "customer_created")
    assert reports_scalar(retry_config, applied) == 6

    gone = client.post(f"{ADMIN}/reports/{by_event[odd['event_id']]['id']}/replay", None)
    assert_error(gone, 404, "NOT_FOUND")
    discarded = client.request("DELETE", f"{ADMIN}/reports/{by_event[None]['id']}")
    assert discarded.status_code == 204
    assert dead(client) == []


def test_only_an_admin_sees_dead_letters_and_mistakes_are_4xx(client):
    manager = client.as_role("manager")
    assert_error(manager.get(ADMIN), 403, "FORBIDDEN")
    assert_error(manager.post(f"{ADMIN}/reports/replay", {}), 403, "FORBIDDEN")
    assert_error(client.get(f"{ADMIN}/gateway"), 404, "NOT_FOUND")
    assert_error(client.get(f"{ADMIN}/reports", params={"status": "lost"}), 400, "VALIDATION_ERROR")
    assert_error(client.get(f"{ADMIN}/reports", params={"cursor": "x"}), 400, "VALIDATION_ERROR")
    missing = "0b7e7dd0-0000-4000-8000-000000000000"
    assert_error(client.get(f"{ADMIN}/pipeline/{missing}"), 404, "NOT_FOUND")
    assert_error(client.post(f"{ADMIN}/customers/{missing}/replay", None), 404, "NOT_FOUND")
    assert_error(
        client.post(f"{ADMIN}/interactions/replay", {"limit": 1000}), 400, "VALIDATION_ERROR"
    )
    counts = client.get(ADMIN).json()["services"]
    assert [entry["service"] for entry in counts] == [
        "customers",
        "pipeline",
        "interactions",
        "reports",
    ]
    assert all(entry["dead"] == entry["retrying"] == 0 for entry in counts)


@pytest.fixture
def database_proxy(crm_config):
    """The reports database behind a proxy: `cut()` takes it away from the service alone."""
    url = make_url(crm_config[db_url_key("reports")])
    proxy = TcpProxy(free_port(), url.host or "127.0.0.1", url.port or 5432)
    proxy.start()
    proxy.url = url.set(host="127.0.0.1", port=int(proxy.args[0])).render_as_string(
        hide_password=False
    )
    yield proxy
    proxy.cut()


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_a_database_outage_is_waited_out_not_dead_lettered(
    crm_config, database_proxy, runner_factory, caplog
):
    config = dict(crm_config, CRM_EVENT_MAX_ATTEMPTS=1)  # a counted failure would be dead
    config[db_url_key("reports")] = database_proxy.url
    runner_factory(config, ReportsService).start()
    with ClusterRpcProxy(config) as rpc:
        wait_for(lambda: rpc.reports.health(), message="reports up")

        database_proxy.cut()
        events = [customer_created(f"c-{n}") for n in range(3)]
        for body in events:
            publish(config, body)
        wait_for(
            lambda: caplog.text.count("cannot record a failed event") >= 6,
            timeout=60,
            message="the events back in the queue, again and again",
        )
        database_proxy.start()
        wait_for(
            lambda: rpc.reports.customers_by_status_owner()["total"] == 3,
            timeout=60,
            message="every event applied once the database is back",
        )
    # Read past the proxy: the service's own view of the table.
    assert reports_scalar(crm_config, select(func.count()).select_from(DeadLetter)) == 0
    assert reports_scalar(crm_config, select(func.count()).select_from(AppliedEvent)) == 3


def test_the_cli_lists_and_replays_dead_letters(crm_config, runner_factory, monkeypatch):
    runner_factory(crm_config, CustomersService, ReportsService).start()
    body = customer_created("c-cli")
    real = reports_service.apply_customer
    monkeypatch.setitem(
        reports_service.APPLIERS,
        CUSTOMER_CREATED,
        (lambda session, envelope: 1 / 0, reports_service.APPLIERS[CUSTOMER_CREATED][1]),
    )
    publish(crm_config, body)
    with ClusterRpcProxy(crm_config) as rpc:
        wait_for(lambda: rpc.reports.dead_letter_counts()["dead"] == 1, message="a dead letter")

    def crm(*argv):
        out = io.StringIO()
        args = argparse.Namespace(status=None, event_type=None, limit=None, ids=[], service=None)
        vars(args).update(argv[0])
        code = dead_letter_cli.run(crm_config, args, out)
        return code, out.getvalue()

    code, text = crm({"action": "list"})
    assert code == 0
    assert "reports: 1 dead, 0 retrying" in text
    assert "customers: 0 dead, 0 retrying, oldest -" in text
    assert "pipeline: does not answer" in text
    code, text = crm({"action": "list", "service": "reports"})
    [line] = text.splitlines()
    letter_id = line.split()[0]
    assert "customers.customer_created" in line
    assert "ZeroDivisionError" in line

    code, text = crm({"action": "replay", "service": "reports", "ids": [letter_id]})
    assert code == 1
    assert f"{letter_id}  failed  ZeroDivisionError" in text

    monkeypatch.setitem(
        reports_service.APPLIERS,
        CUSTOMER_CREATED,
        (real, reports_service.APPLIERS[CUSTOMER_CREATED][1]),
    )
    code, text = crm({"action": "replay", "service": "reports"})
    assert code == 0, text
    assert f"{letter_id}  applied" in text
    assert "1 replayed, 0 failed again" in text
    with ClusterRpcProxy(crm_config) as rpc:
        assert rpc.reports.customers_by_status_owner()["total"] == 1


def test_quorum_queues_carry_events_when_asked_for(crm_config, runner_factory):
    config = dict(crm_config, CRM_EVENT_QUEUE_TYPE="quorum")
    runner_factory(config, CustomersService, ReportsService).start()
    with ClusterRpcProxy(config) as rpc:
        rpc.customers.create_customer({"name": "Ada", "owner": "sam"})
        wait_for(
            lambda: rpc.reports.customers_by_status_owner()["total"] == 1,
            message="the customer in the report, through a quorum queue",
        )
    queue = queue_state(config, "evt-customers-customer_created--reports.apply_customer_created")
    assert queue["type"] == "quorum"
    assert queue["durable"] is True
