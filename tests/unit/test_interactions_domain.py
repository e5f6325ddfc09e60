"""The ticket workflow and its SLA clock, driven with a clock the test moves (no sleeping)."""

from datetime import UTC, datetime, timedelta

import pytest

from crm_common import cursors
from crm_common.config import from_env
from services.interactions import domain
from services.interactions.exceptions import InvalidTicketStep
from services.interactions.models import Ticket

OPENED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = domain.sla_policy(from_env({}))


class Clock:
    def __init__(self, now=OPENED):
        self.now = now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


def new_ticket(priority="high", clock=None):
    ticket = Ticket(
        id="t-1",
        customer_id="c-1",
        subject="Invoice wrong",
        priority=priority,
        channel="email",
        opened_by="agent",
        reopened_count=0,
    )
    domain.open_ticket(ticket, POLICY, (clock or Clock()).now)
    return ticket


def step(ticket, name, clock, actor="kim", **details):
    return domain.take_step(ticket, name, actor, clock.now, **details)


def event_types(events):
    return [event_type for event_type, _ in events]


def test_default_targets_tighten_with_priority():
    assert POLICY["urgent"] == domain.SlaTargets(timedelta(minutes=15), timedelta(hours=4))
    assert POLICY["high"] == domain.SlaTargets(timedelta(hours=1), timedelta(hours=8))
    assert POLICY["normal"] == domain.SlaTargets(timedelta(hours=4), timedelta(days=1))
    assert POLICY["low"] == domain.SlaTargets(timedelta(days=1), timedelta(days=3))


def test_targets_come_from_the_configuration():
    policy = domain.sla_policy(
        from_env(
            {"CRM_SLA_URGENT_RESPONSE_MINUTES": "5", "CRM_SLA_URGENT_RESOLUTION_MINUTES": "1.5"}
        )
    )
    assert policy["urgent"] == domain.SlaTargets(timedelta(minutes=5), timedelta(seconds=90))


def test_opening_sets_the_due_times_from_the_priority():
    ticket = new_ticket("urgent")
    assert ticket.status == "open"
    assert ticket.response_due_at == OPENED + timedelta(minutes=15)
    assert ticket.resolution_due_at == OPENED + timedelta(hours=4)


def test_the_whole_workflow_records_actor_and_time_of_each_step():
    clock = Clock()
    ticket = new_ticket(clock=clock)
    clock.advance(minutes=5)
    taken, events = step(ticket, "assign", clock, actor="lead", assignee="kim")
    assert (taken.from_status, taken.to_status, taken.actor, taken.at) == (
        "open",
        "assigned",
        "lead",
        clock.now,
    )
    [(event_type, data)] = events
    assert event_type == "ticket_assigned"
    assert (data["assignee"], data["by"], data["previous_assignee"]) == ("kim", "lead", None)

    clock.advance(minutes=20)
    _, [(_, responded)] = step(ticket, "respond", clock)
    assert (responded["first"], responded["seconds_since_open"]) == (True, 25 * 60)
    assert ticket.first_responded_at == clock.now

    clock.advance(hours=2)
    _, [(_, resolved)] = step(ticket, "resolve", clock, note="refunded")
    assert ticket.status == "resolved"
    assert (resolved["resolution_seconds"], resolved["first_response_seconds"]) == (
        2 * 3600 + 25 * 60,
        25 * 60,
    )
    assert resolved["survey_due"] is True and ticket.survey_due_at == clock.now
    assert (resolved["assignee"], resolved["note"]) == ("kim", "refunded")

    clock.advance(days=1)
    taken, [(event_type, closed)] = step(ticket, "close", clock)
    assert (ticket.status, event_type, taken.to_status) == ("closed", "ticket_closed", "closed")
    assert ticket.closed_at == clock.now
    assert domain.breaches(ticket, clock.advance(days=30)) == []


ALLOWED = {
    "open": {"assign"},
    "assigned": {"assign", "respond"},
    "responded": {"assign", "respond", "resolve"},
    "resolved": {"close", "reopen"},
    "closed": set(),
}


@pytest.mark.parametrize("status", domain.STATUSES)
@pytest.mark.parametrize("name", sorted(domain.STEPS))
def test_a_step_out_of_order_is_refused_and_changes_nothing(status, name):
    ticket = new_ticket()
    ticket.status = status
    if name in ALLOWED[status]:
        assert domain.next_status(status, name) in domain.STATUSES
        return
    with pytest.raises(InvalidTicketStep) as caught:
        step(ticket, name, Clock(), assignee="kim")
    assert ticket.status == status
    assert caught.value.details["ticket_status"] == status
    assert caught.value.details["step"] == name


def test_reopen_goes_back_to_the_handler_and_a_second_response_is_not_first():
    clock = Clock()
    ticket = new_ticket(clock=clock)
    for name in ("assign", "respond", "resolve"):
        clock.advance(minutes=1)
        step(ticket, name, clock, assignee="kim")
    taken, [(event_type, data)] = step(ticket, "reopen", clock, note="still broken")
    assert (event_type, taken.to_status, ticket.assignee) == ("ticket_reopened", "assigned", "kim")
    assert (ticket.resolved_at, ticket.survey_due_at, data["reopened_count"]) == (None, None, 1)
    _, [(_, responded)] = step(ticket, "respond", clock)
    assert responded["first"] is False
    step(ticket, "resolve", clock)
    assert ticket.status == "resolved"


def test_reassigning_keeps_the_status():
    clock = Clock()
    ticket = new_ticket(clock=clock)
    step(ticket, "assign", clock, assignee="kim")
    step(ticket, "respond", clock)
    _, [(_, data)] = step(ticket, "assign", clock, assignee="lee")
    assert (ticket.status, ticket.assignee, data["previous_assignee"]) == (
        "responded",
        "lee",
        "kim",
    )


def test_no_breach_before_a_target_passes():
    ticket = new_ticket("high")
    assert domain.breaches(ticket, OPENED + timedelta(minutes=60)) == []


def test_a_target_passed_without_its_step_is_one_breach_per_kind():
    clock = Clock()
    ticket = new_ticket("high", clock)
    clock.advance(minutes=61)
    assert domain.record_breaches(ticket, clock.now) == [("first_response", ticket.response_due_at)]
    assert ticket.response_breached_at == clock.now
    assert domain.record_breaches(ticket, clock.advance(hours=1)) == []  # recorded once
    clock.advance(hours=7)
    assert domain.record_breaches(ticket, clock.now) == [("resolution", ticket.resolution_due_at)]
    assert domain.record_breaches(ticket, clock.advance(days=1)) == []


def test_a_late_first_response_is_a_breach_the_step_itself_records():
    clock = Clock()
    ticket = new_ticket("urgent", clock)
    step(ticket, "assign", clock, assignee="kim")
    clock.advance(minutes=16)
    _, events = step(ticket, "respond", clock)
    assert event_types(events) == ["ticket_sla_breached", "ticket_responded"]
    breach = events[0][1]
    assert (breach["kind"], breach["assignee"]) == ("first_response", "kim")
    assert breach["due_at"] == (OPENED + timedelta(minutes=15)).isoformat()
    assert breach["breached_at"] == clock.now.isoformat()
    # The timer, coming later, finds nothing left to record.
    assert domain.breaches(ticket, clock.advance(minutes=1)) == []


def test_a_timely_response_and_late_resolution():
    clock = Clock()
    ticket = new_ticket("urgent", clock)
    step(ticket, "assign", clock, assignee="kim")
    clock.advance(minutes=10)
    _, events = step(ticket, "respond", clock)
    assert event_types(events) == ["ticket_responded"]
    clock.advance(hours=5)
    _, events = step(ticket, "resolve", clock)
    assert event_types(events) == ["ticket_sla_breached", "ticket_resolved"]
    assert events[0][1]["kind"] == "resolution"


def test_a_reopened_ticket_runs_against_its_first_resolution_target():
    clock = Clock()
    ticket = new_ticket("high", clock)
    for name in ("assign", "respond", "resolve"):
        clock.advance(minutes=10)
        step(ticket, name, clock, assignee="kim")
    clock.advance(hours=1)
    step(ticket, "reopen", clock)
    assert domain.breaches(ticket, clock.now) == []
    clock.advance(hours=8)
    assert domain.breaches(ticket, clock.now) == [("resolution", ticket.resolution_due_at)]


def test_satisfaction_waits_for_resolution():
    ticket = new_ticket()
    for status in ("open", "assigned", "responded"):
        ticket.status = status
        with pytest.raises(InvalidTicketStep):
            domain.check_survey(ticket)
    for status in ("resolved", "closed"):
        ticket.status = status
        domain.check_survey(ticket)


def test_a_complaint_is_titled_by_its_first_line():
    assert domain.ticket_subject("  The invoice\nis wrong") == "The invoice"
    assert domain.ticket_subject("x" * 300).endswith("…")
    assert len(domain.ticket_subject("x" * 300)) == 200


def test_scrubbing_removes_free_text_from_event_data_only():
    body = {
        "event_type": "ticket_opened",
        "data": {"ticket_id": "t", "subject": "Divorce", "note": None},
    }
    assert domain.scrubbed_event(body)["data"] == {"ticket_id": "t", "subject": None, "note": None}
    assert body["data"]["subject"] == "Divorce"


def test_cursors_round_trip_and_forgeries_are_refused():
    item_id = "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b"
    mark = cursors.encode_mark(OPENED, "ticket", item_id)
    assert cursors.decode_mark(mark) == (OPENED, "ticket", item_id)
    plain = cursors.encode_position(OPENED, item_id)
    assert cursors.decode_position(plain) == (OPENED, item_id)
    for forged in ("forged", "WzEsIDJd", mark[:-3], plain + "x", plain):
        with pytest.raises(ValueError):
            cursors.decode_mark(forged)
    with pytest.raises(ValueError):
        cursors.decode_position(mark)  # a timeline cursor is not a list cursor
    with pytest.raises(ValueError):
        cursors.decode_mark(cursors.encode_mark(OPENED, "no such kind!", item_id))
