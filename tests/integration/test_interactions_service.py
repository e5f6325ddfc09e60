"""The interactions service over RPC and events, on real RabbitMQ, SQLite and PostgreSQL.

The SLA clock is the test's: a service subclass reads the time from `CLOCK`,
which the test moves; the timer runs every tenth of a second.
"""

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from kombu import Connection, Exchange, Queue
from nameko.extensions import DependencyProvider
from nameko.standalone.rpc import ClusterRpcProxy

from crm_common.metrics import queue_depths
from gateway.http import ApiError
from services.customers.service import CustomersService
from services.interactions.service import InteractionsService
from services.pipeline.service import PipelineService
from tests.support.waiting import wait_for

pytestmark = pytest.mark.parametrize("db_kind", ["sqlite", "postgres"])


class MovableClock:
    def __init__(self):
        self.now = datetime.now(UTC)

    def advance(self, **delta):
        self.now += timedelta(**delta)


CLOCK = MovableClock()


class MovedClock(DependencyProvider):
    def get_dependency(self, worker_ctx):
        return lambda: CLOCK.now


class ClockedInteractions(InteractionsService):
    clock = MovedClock()


@pytest.fixture
def config(crm_config):
    CLOCK.now = datetime.now(UTC)
    return {**crm_config, "CRM_SLA_CHECK_SECONDS": 0.1}


@pytest.fixture
def start(config, runner_factory):
    """start(): one more instance of the interactions service (customers runs once)."""
    runner_factory(config, CustomersService).start()

    def start_instance():
        runner = runner_factory(config, ClockedInteractions)
        runner.start()
        return runner

    return start_instance


@pytest.fixture
def rpc(config):
    with ClusterRpcProxy(config) as proxy:
        yield proxy


def events(rpc, event_type=None, aggregate_id=None):
    found, cursor = [], None
    while True:
        page = rpc.interactions.events_since(cursor, 1000)
        found += page["events"]
        if not page["events"]:
            break
        cursor = page["next_cursor"]
    return [
        event
        for event in found
        if event_type in (None, event["event_type"])
        and aggregate_id in (None, event["aggregate_id"])
    ]


def customer(rpc, name="Ada Lovelace"):
    return rpc.customers.create_customer({"name": name}, True)["id"]


def work(rpc, ticket_id, *steps):
    for name in steps:
        payload = {"assignee": "kim"} if name == "assign" else {}
        rpc.interactions.ticket_step(ticket_id, name, payload, "lead")


def test_a_complaint_becomes_a_ticket_whose_story_reaches_the_broker(start, rpc, config):
    start()
    exchange = Exchange("interactions.events", type="topic", durable=True)
    with Connection(config["AMQP_URI"]) as connection:
        queue = Queue("test.interactions", exchange, routing_key="#", durable=False)
        queue(connection).declare()
        ada = customer(rpc)
        complaint = rpc.interactions.submit_feedback(
            {"customer_id": ada, "kind": "complaint", "text": "Invoice wrong"}, "sam"
        )
        ticket_id = complaint["ticket_id"]
        work(rpc, ticket_id, "assign", "respond", "resolve")
        rpc.interactions.record_satisfaction(ticket_id, {"score": 4}, "ada")
        work(rpc, ticket_id, "close")
        received = []

        def drained():
            message = queue(connection).get(no_ack=True)
            if message is not None:
                received.append(message.payload)
            return len(received) == 7

        wait_for(drained, message="the ticket's events on the broker")
    # The broker keeps no order between publishes; `sequence` orders a ticket's story.
    received.sort(key=lambda body: (body["aggregate_id"] == ticket_id, body["sequence"]))
    assert [body["event_type"] for body in received] == [
        "feedback_received",
        "ticket_opened",
        "ticket_assigned",
        "ticket_responded",
        "ticket_resolved",
        "satisfaction_recorded",
        "ticket_closed",
    ]
    story = [body for body in received if body["aggregate_id"] == ticket_id]
    assert [body["sequence"] for body in story] == [1, 2, 3, 4, 5, 6]
    assert story[0]["data"]["feedback_id"] == complaint["id"]
    satisfaction = story[4]["data"]
    assert (satisfaction["score"], satisfaction["agent"], satisfaction["channel"]) == (
        4,
        "kim",
        "web",
    )
    assert rpc.interactions.get_ticket(ticket_id)["status"] == "closed"


def test_records_need_a_customer_that_exists(start, rpc):
    start()
    ada = customer(rpc)
    rpc.customers.erase_customer(ada)
    for customer_id in (ada, "5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a"):
        with pytest.raises(ApiError) as caught:  # the gateway's mapping of UnknownCustomer
            rpc.interactions.log_interaction({"customer_id": customer_id, "channel": "note"})
        assert (caught.value.status, list(caught.value.fields)) == (400, ["customer_id"])
    assert events(rpc) == []


def test_a_deal_check_the_pipeline_cannot_answer_is_unavailable_and_leaves_no_call_behind(
    start, rpc, config, runner_factory
):
    """The pipeline's queue outlives the service: a check that timed out must not wait
    there, to run when the pipeline is back and nobody waits for it any more."""
    config["CRM_RPC_TIMEOUT"] = 1
    stopped = runner_factory(config, PipelineService)
    stopped.start()
    stopped.stop()
    start()
    ada = customer(rpc)
    with pytest.raises(ApiError) as caught:  # the gateway's mapping of Unavailable
        rpc.interactions.log_interaction(
            {"customer_id": ada, "channel": "note", "deal_id": str(uuid.uuid4())}
        )
    assert caught.value.status == 503
    assert "did not answer within 1 s" in caught.value.message
    wait_for(
        lambda: (
            queue_depths(config["AMQP_URI"], ["rpc-pipeline"]) == [({"queue": "rpc-pipeline"}, 0)]
        ),
        timeout=10,
        message="the unanswered deal check to expire",
    )
    assert events(rpc) == []


def test_sla_breaches_are_told_once_across_restarts(start, rpc):
    instance = start()
    ada = customer(rpc)
    ticket = rpc.interactions.open_ticket(
        {"customer_id": ada, "subject": "Down", "priority": "urgent"}
    )
    CLOCK.advance(minutes=16)
    wait_for(lambda: events(rpc, "ticket_sla_breached"), message="the response breach")

    # Stopped while the resolution target passes: the breach is found on restart.
    instance.stop()
    CLOCK.advance(hours=4)
    start()
    wait_for(lambda: len(events(rpc, "ticket_sla_breached")) == 2, message="the resolution breach")
    CLOCK.advance(hours=1)
    work(rpc, ticket["id"], "assign", "respond", "resolve")  # late, and told already
    start()  # a second instance runs its timer too
    CLOCK.advance(days=1)
    rpc.interactions.open_ticket({"customer_id": ada, "subject": "Later", "priority": "low"})
    breaches = events(rpc, "ticket_sla_breached", ticket["id"])
    assert [(e["data"]["kind"], e["sequence"]) for e in breaches] == [
        ("first_response", 2),
        ("resolution", 3),
    ]
    assert rpc.interactions.get_ticket(ticket["id"])["sla"]["resolution_breached"] is True


def test_two_instances_tell_each_breach_once(start, rpc):
    start()
    start()
    ada = customer(rpc)
    tickets = [
        rpc.interactions.open_ticket({"customer_id": ada, "subject": f"#{n}", "priority": "high"})
        for n in range(15)
    ]
    CLOCK.advance(minutes=61)
    wait_for(
        lambda: len(events(rpc, "ticket_sla_breached")) >= len(tickets),
        message="every response breach",
    )
    time.sleep(0.5)  # both timers run a few more rounds over the same tickets
    breaches = events(rpc, "ticket_sla_breached")
    assert sorted(e["aggregate_id"] for e in breaches) == sorted(t["id"] for t in tickets)


def test_merged_customers_records_move_to_the_survivor(start, rpc):
    start()
    ada, twin = customer(rpc), customer(rpc, "Ada L.")
    interaction = rpc.interactions.log_interaction(
        {"customer_id": twin, "channel": "email", "direction": "inbound", "subject": "Hi"}
    )
    ticket = rpc.interactions.open_ticket({"customer_id": twin, "subject": "Broken"})
    work(rpc, ticket["id"], "assign", "respond", "resolve")
    rpc.interactions.record_satisfaction(ticket["id"], {"score": 3})
    rpc.customers.merge_customers(ada, {"merge_ids": [twin]}, "admin")
    wait_for(
        lambda: len(rpc.interactions.timeline(ada, 50)["items"]) == 3, message="the re-parenting"
    )
    assert rpc.interactions.get_interaction(interaction["id"])["customer_id"] == ada
    assert rpc.interactions.get_ticket(ticket["id"])["satisfaction"]["customer_id"] == ada
    # A record filed under the merged id after the merge lands on the survivor.
    later = rpc.interactions.log_interaction({"customer_id": twin, "channel": "note"})
    assert later["customer_id"] == ada
    listed = rpc.interactions.list_interactions({"customer_id": twin})["items"]
    assert {item["id"] for item in listed} == {interaction["id"], later["id"]}


def test_an_erased_customers_free_text_goes_from_records_and_event_log(start, rpc):
    start()
    ada = customer(rpc)
    rpc.interactions.log_interaction(
        {
            "customer_id": ada,
            "channel": "call",
            "direction": "outbound",
            "subject": "Her divorce",
            "body": "Talked about the divorce",
            "outcome": "divorce papers",
        }
    )
    complaint = rpc.interactions.submit_feedback(
        {"customer_id": ada, "kind": "complaint", "text": "My divorce lawyer"}
    )
    work(rpc, complaint["ticket_id"], "assign")
    rpc.interactions.ticket_step(complaint["ticket_id"], "respond", {"note": "re: divorce"})
    rpc.interactions.ticket_step(complaint["ticket_id"], "resolve", {})
    rpc.interactions.record_satisfaction(complaint["ticket_id"], {"score": 1, "comment": "divorce"})
    rpc.customers.erase_customer(ada)

    def scrubbed():
        held = str(rpc.interactions.timeline(ada, 50))
        held += str(rpc.interactions.get_ticket(complaint["ticket_id"]))
        held += str(rpc.interactions.list_interactions({"customer_id": ada}))
        held += str(events(rpc))
        return "divorce" not in held.lower()

    wait_for(scrubbed, message="the erasure")
    assert len(rpc.interactions.timeline(ada, 50)["items"]) == 4  # anonymous records stay
