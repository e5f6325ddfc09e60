"""The interactions service's entrypoints on a real SQLite file, with fakes for its neighbours.

The clock is the test's: SLA targets pass when the test says so, never by sleeping.
"""

from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from nameko.exceptions import RemoteError
from nameko.testing.services import worker_factory
from sqlalchemy import select

from crm_common.config import from_env
from crm_common.customer_refs import UnknownCustomer
from crm_common.errors import Unavailable
from crm_common.outbox import OutboxWriter
from services.interactions.events import CATALOG
from services.interactions.exceptions import (
    InvalidInput,
    InvalidTicketStep,
    SatisfactionAlreadyRecorded,
    TicketNotFound,
    UnknownDeal,
)
from services.interactions.models import OutboxEvent
from services.interactions.service import InteractionsService, apply_erasure, apply_merge
from tests.support.fakes import bound_outbox, database_for

ADA = "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b"
GRACE = "1c6d4e1f-9a8b-4d3f-8e2c-3b4a5f6e7d8c"
GONE = "2d7e5f20-ab9c-4e40-9f3d-4c5b6a7f8e9d"
DEAL = "3e8f6031-bcad-4f51-a04e-5d6c7b8a9f0e"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)


class FakeCustomers:
    """resolve_customer as the customers service answers it."""

    def __init__(self):
        self.known = {ADA: "active", GRACE: "active", GONE: "erased"}
        self.merged = {}

    def resolve_customer(self, customer_id):
        customer_id = self.merged.get(customer_id, customer_id)
        state = self.known.get(customer_id)
        if state is None:
            return {"id": None, "state": "missing"}
        return {"id": customer_id, "state": state}


class FakePipeline:
    def __init__(self, deals=None, behaviour=None):
        self.deals = deals or {}
        self.behaviour = behaviour

    def resolve_deal(self, deal_id):
        if self.behaviour:
            return self.behaviour()
        customer_id = self.deals.get(deal_id)
        if customer_id is None:
            return {"id": None, "customer_id": None, "state": "missing"}
        return {"id": deal_id, "customer_id": customer_id, "state": "open"}


@pytest.fixture
def database(make_db_url):
    url = make_db_url("sqlite", "interactions", schema="interactions")
    return database_for(url)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def outbox(database):
    return bound_outbox(OutboxEvent, CATALOG, database, service_name="interactions")


@pytest.fixture
def make_service(database, outbox, clock):
    """A fresh worker each call, as Nameko gives each request; `pipeline` replaceable."""
    sessions = []

    def make(pipeline=None):
        session = database.session()
        sessions.append(session)
        return worker_factory(
            InteractionsService,
            db=session,
            outbox=OutboxWriter(outbox, []),
            clock=clock,
            config=from_env({"CRM_RPC_TIMEOUT": "0.2"}),
            customers=FakeCustomers(),
            pipeline=pipeline or FakePipeline({DEAL: ADA}),
        )

    yield make
    for session in sessions:
        session.close()


@pytest.fixture
def service(make_service):
    return make_service()


def events(database, event_type=None):
    with database.session() as session:
        bodies = session.scalars(select(OutboxEvent.body).order_by(OutboxEvent.id)).all()
    return [body for body in bodies if event_type in (None, body["event_type"])]


def test_an_interaction_is_logged_with_its_owner_and_event(service, database, clock):
    logged = service.log_interaction(
        {
            "customer_id": ADA.upper(),
            "channel": "call",
            "direction": "outbound",
            "subject": "  Renewal  ",
            "outcome": "agreed to a demo",
            "deal_id": DEAL,
        },
        "sam",
    )
    assert (logged["customer_id"], logged["subject"], logged["owner"]) == (ADA, "Renewal", "sam")
    assert logged["occurred_at"] == START.isoformat()
    [event] = events(database)
    assert event["event_type"] == "interaction_logged"
    assert (event["aggregate_id"], event["sequence"]) == (logged["id"], 1)
    assert event["data"]["deal_id"] == DEAL
    assert event["data"]["outcome"] == "agreed to a demo"
    assert "body" not in event["data"]


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"channel": "call", "direction": "inbound"}, "customer_id"),
        ({"customer_id": "nope", "channel": "call", "direction": "inbound"}, "customer_id"),
        ({"customer_id": ADA, "channel": "fax", "direction": "inbound"}, "channel"),
        ({"customer_id": ADA, "channel": "call"}, "direction"),
        ({"customer_id": ADA, "channel": "note", "direction": "sideways"}, "direction"),
        ({"customer_id": ADA, "channel": "note", "colour": "red"}, "colour"),
        ({"customer_id": ADA, "channel": "note", "subject": "x" * 201}, "subject"),
        ({"customer_id": ADA, "channel": "note", "body": "a\x00b"}, "body"),
        (
            {"customer_id": ADA, "channel": "note", "occurred_at": "2026-03-02T09:00:00"},
            "occurred_at",
        ),
        (
            {"customer_id": ADA, "channel": "note", "occurred_at": "2026-03-03T09:00:00Z"},
            "occurred_at",
        ),
        # Valid ISO 8601, but UTC has no date for them.
        (
            {"customer_id": ADA, "channel": "note", "occurred_at": "0001-01-01T00:00:00+14:00"},
            "occurred_at",
        ),
        (
            {"customer_id": ADA, "channel": "note", "occurred_at": "9999-12-31T23:59:59-14:00"},
            "occurred_at",
        ),
    ],
)
def test_bad_interactions_are_refused_naming_the_field(service, database, payload, field):
    with pytest.raises(InvalidInput) as caught:
        service.log_interaction(payload)
    assert field in caught.value.fields
    assert events(database) == []


@pytest.mark.parametrize(
    ("customer_id", "deal_id", "error"),
    [
        ("5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a", None, UnknownCustomer),
        (GONE, None, UnknownCustomer),
        (ADA, "5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a", UnknownDeal),
        (GRACE, DEAL, UnknownDeal),  # Ada's deal
    ],
)
def test_unknown_customers_and_deals_are_refused(service, customer_id, deal_id, error):
    payload = {"customer_id": customer_id, "channel": "note", "deal_id": deal_id}
    with pytest.raises(error) as caught:
        service.log_interaction(payload)
    assert list(caught.value.fields) == ["deal_id" if error is UnknownDeal else "customer_id"]


def test_a_deal_still_filed_under_a_merged_customer_belongs_to_the_survivor(make_service):
    service = make_service(FakePipeline({DEAL: GRACE}))
    service.customers.merged[GRACE] = ADA
    logged = service.log_interaction({"customer_id": ADA, "channel": "note", "deal_id": DEAL})
    assert logged["deal_id"] == DEAL


@pytest.mark.parametrize(
    "behaviour",
    [
        lambda: eventlet.sleep(5),
        lambda: (_ for _ in ()).throw(RemoteError("MethodNotFound", "resolve_deal")),
    ],
)
def test_a_pipeline_that_cannot_answer_is_unavailable(make_service, database, behaviour):
    service = make_service(FakePipeline(behaviour=behaviour))
    with pytest.raises(Unavailable):
        service.log_interaction({"customer_id": ADA, "channel": "note", "deal_id": DEAL})
    assert events(database) == []


def test_lists_are_newest_first_with_filters_and_cursors(make_service, clock):
    for number in range(5):
        clock.advance(minutes=1)
        make_service().log_interaction(
            {
                "customer_id": ADA if number % 2 == 0 else GRACE,
                "channel": "note",
                "subject": f"n{number}",
                "owner": "sam",
            }
        )
    service = make_service()
    first = service.list_interactions({"limit": 2})
    assert [item["subject"] for item in first["items"]] == ["n4", "n3"]
    second = service.list_interactions({"limit": 2, "cursor": first["next_cursor"]})
    assert [item["subject"] for item in second["items"]] == ["n2", "n1"]
    last = service.list_interactions({"limit": 2, "cursor": second["next_cursor"]})
    assert ([item["subject"] for item in last["items"]], last["next_cursor"]) == (["n0"], None)
    only_ada = service.list_interactions({"customer_id": ADA})
    assert [item["subject"] for item in only_ada["items"]] == ["n4", "n2", "n0"]
    assert service.list_interactions({"channel": "call"})["items"] == []
    for bad in ({"cursor": "forged"}, {"limit": 501}, {"limit": "5"}, {"status": "open"}):
        with pytest.raises(InvalidInput):
            service.list_interactions(bad)


def test_a_complaint_opens_a_ticket_linked_to_it(service, database):
    answer = service.submit_feedback(
        {"customer_id": ADA, "kind": "complaint", "text": "Invoice is wrong\nTwice now."}, "sam"
    )
    ticket = answer["ticket"]
    assert answer["ticket_id"] == ticket["id"]
    assert (ticket["feedback_id"], ticket["subject"], ticket["status"]) == (
        answer["id"],
        "Invoice is wrong",
        "open",
    )
    assert [e["event_type"] for e in events(database)] == ["feedback_received", "ticket_opened"]
    praise = service.submit_feedback({"customer_id": ADA, "kind": "praise", "text": "Great!"})
    assert (praise["ticket_id"], praise["ticket"]) == (None, None)


def run_to(make_service, ticket_id, *steps):
    for name in steps:
        payload = {"assignee": "kim"} if name == "assign" else {}
        ticket = make_service().ticket_step(ticket_id, name, payload, "lead")
    return ticket


def test_ticket_events_number_one_history(make_service, database, clock):
    ticket = make_service().open_ticket(
        {"customer_id": ADA, "subject": "Broken", "priority": "urgent"}
    )
    clock.advance(minutes=5)
    run_to(make_service, ticket["id"], "assign", "respond", "resolve")
    answer = make_service().record_satisfaction(ticket["id"], {"score": 4, "comment": "ok"}, "ada")
    assert (answer["score"], answer["agent"], answer["channel"]) == (4, "kim", "web")
    closed = run_to(make_service, ticket["id"], "close")
    history = events(database)
    assert [(e["event_type"], e["sequence"]) for e in history] == [
        ("ticket_opened", 1),
        ("ticket_assigned", 2),
        ("ticket_responded", 3),
        ("ticket_resolved", 4),
        ("satisfaction_recorded", 5),
        ("ticket_closed", 6),
    ]
    assert closed["version"] == 6
    full = make_service().get_ticket(ticket["id"])
    assert [(s["step"], s["to_status"], s["actor"]) for s in full["history"]] == [
        ("open", "open", None),
        ("assign", "assigned", "lead"),
        ("respond", "responded", "lead"),
        ("resolve", "resolved", "lead"),
        ("close", "closed", "lead"),
    ]
    assert full["satisfaction"]["score"] == 4
    assert (full["survey_due"], full["satisfaction_score"]) == (False, 4)


def test_satisfaction_is_once_and_only_after_resolution(make_service):
    ticket = make_service().open_ticket({"customer_id": ADA, "subject": "Broken"})
    with pytest.raises(InvalidTicketStep):
        make_service().record_satisfaction(ticket["id"], {"score": 5})
    resolved = run_to(make_service, ticket["id"], "assign", "respond", "resolve")
    assert resolved["survey_due"] is True
    for bad in ({"score": 0}, {"score": 6}, {"score": 4.5}, {"score": "5"}, {}):
        with pytest.raises(InvalidInput):
            make_service().record_satisfaction(ticket["id"], bad)
    make_service().record_satisfaction(ticket["id"], {"score": 5})
    with pytest.raises(SatisfactionAlreadyRecorded):
        make_service().record_satisfaction(ticket["id"], {"score": 1})


def test_steps_out_of_order_and_unknown_tickets(make_service, database):
    ticket = make_service().open_ticket({"customer_id": ADA, "subject": "Broken"})
    for name in ("respond", "resolve", "close", "reopen"):
        with pytest.raises(InvalidTicketStep):
            make_service().ticket_step(ticket["id"], name, {})
    with pytest.raises(InvalidInput):
        make_service().ticket_step(ticket["id"], "assign", {})  # nobody to assign
    with pytest.raises(InvalidInput):
        make_service().ticket_step(ticket["id"], "escalate", {})
    for unknown in ("5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a", "nope"):
        with pytest.raises(TicketNotFound):
            make_service().ticket_step(unknown, "assign", {"assignee": "kim"})
    assert len(events(database)) == 1


def test_the_sla_timer_records_each_breach_once(make_service, database, clock):
    ticket = make_service().open_ticket({"customer_id": ADA, "subject": "Down", "priority": "high"})
    assert make_service().check_sla() == 0
    clock.advance(minutes=61)
    assert make_service().check_sla() == 1
    assert make_service().check_sla() == 0  # a second instance, or a restart
    clock.advance(hours=8)
    assert make_service().check_sla() == 1
    breaches = events(database, "ticket_sla_breached")
    assert [(e["data"]["kind"], e["sequence"]) for e in breaches] == [
        ("first_response", 2),
        ("resolution", 3),
    ]
    # A response now is late, but the breach is told already.
    run_to(make_service, ticket["id"], "assign", "respond")
    assert len(events(database, "ticket_sla_breached")) == 2
    shown = make_service().get_ticket(ticket["id"])["sla"]
    assert (shown["response_breached"], shown["resolution_breached"]) == (True, True)


def test_the_timer_leaves_what_a_late_step_recorded(make_service, database, clock):
    ticket = make_service().open_ticket(
        {"customer_id": ADA, "subject": "Down", "priority": "urgent"}
    )
    run_to(make_service, ticket["id"], "assign")
    clock.advance(minutes=20)
    run_to(make_service, ticket["id"], "respond")
    assert make_service().check_sla() == 0
    assert [e["data"]["kind"] for e in events(database, "ticket_sla_breached")] == [
        "first_response"
    ]


def test_timeline_merges_every_kind_newest_first_across_pages(make_service, clock):
    make_service().log_interaction({"customer_id": ADA, "channel": "note", "subject": "hello"})
    clock.advance(minutes=1)
    complaint = make_service().submit_feedback(
        {"customer_id": ADA, "kind": "complaint", "text": "Broken"}
    )
    make_service().log_interaction({"customer_id": GRACE, "channel": "note"})
    clock.advance(minutes=1)
    run_to(make_service, complaint["ticket_id"], "assign", "respond", "resolve")
    make_service().record_satisfaction(complaint["ticket_id"], {"score": 2})
    pages, cursor = [], None
    while True:
        page = make_service().timeline(ADA, 2, cursor)
        pages.append([(item["kind"], item["at"]) for item in page["items"]])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    later, same, first = (START + timedelta(minutes=n) for n in (2, 1, 0))
    assert pages == [
        [("satisfaction", later.isoformat()), ("ticket", same.isoformat())],
        [("feedback", same.isoformat()), ("interaction", first.isoformat())],
    ]
    whole = make_service().timeline(ADA, 50)["items"]
    assert whole[0]["score"] == 2 and whole[1]["status"] == "resolved"
    assert whole[2]["feedback_kind"] == "complaint"
    with pytest.raises(InvalidInput):
        make_service().timeline(ADA, 2, "forged")
    with pytest.raises(InvalidInput):
        make_service().timeline("nope", 2)


def test_merge_moves_records_and_erasure_scrubs_them_and_their_events(
    make_service, database, clock
):
    ticket = make_service().open_ticket(
        {"customer_id": GRACE, "subject": "Her divorce", "description": "Details"}
    )
    run_to(make_service, ticket["id"], "assign")
    make_service().ticket_step(ticket["id"], "respond", {"note": "Sorry about the divorce"})
    make_service().log_interaction(
        {"customer_id": GRACE, "channel": "call", "direction": "inbound", "body": "divorce talk"}
    )
    with database.session() as session:
        apply_merge(session, {"data": {"survivor_id": ADA, "merged_ids": [GRACE]}})
        session.commit()
    service = make_service()
    assert service.get_ticket(ticket["id"])["customer_id"] == ADA
    assert len(service.timeline(GRACE, 50)["items"]) == 2  # the merged id finds the survivor
    with database.session() as session:
        apply_erasure(session, {"data": {"customer_id": ADA, "erased_at": clock.now}})
        session.commit()
    service = make_service()
    text = str(service.get_ticket(ticket["id"])) + str(service.list_interactions({}))
    text += str(events(database))
    assert "divorce" not in text.lower()
    with pytest.raises(UnknownCustomer):
        service.submit_feedback({"customer_id": GRACE, "kind": "praise", "text": "hi"})


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (InvalidTicketStep("No.", details={"ticket_status": "open", "step": "close"}), 422),
        (SatisfactionAlreadyRecorded("Once.", details={"ticket_id": ADA}), 409),
        (UnknownDeal("No deal.", {"deal_id": ["No such deal."]}), 400),
        (TicketNotFound("No ticket.", details={"id": ADA}), 404),
    ],
)
def test_errors_reach_the_gateway_with_their_status_and_details(error, status):
    from nameko.exceptions import deserialize, serialize

    from gateway.http import ApiError
    from gateway.remote import REMOTE_ERRORS  # registers the services' errors with nameko

    assert type(error).__module__ + "." + type(error).__name__ in REMOTE_ERRORS

    received = deserialize(serialize(error))
    assert isinstance(received, ApiError)
    assert received.status == status
    assert received.response().get_json()["error"]["message"] == error.message
