"""The demo data set (crm_common.demo_data): the same for a seed, varied, and valid for the API."""

from collections import Counter
from datetime import date

from crm_common import demo_data
from gateway import schemas

TODAY = date(2026, 6, 15)


def stories(seed, count):
    return [demo_data.story(seed, index, TODAY) for index in range(count)]


def test_a_seed_always_makes_the_same_people_and_stories():
    assert stories(1, 50) == stories(1, 50)
    assert [told.customer["email"] for told in stories(2, 50)] != [
        told.customer["email"] for told in stories(1, 50)
    ]


def test_names_emails_and_phones_never_repeat_within_a_data_set():
    everyone = stories(1, 1600)
    for key in ("name", "email", "phone"):
        values = [told.customer[key] for told in everyone]
        assert len(set(values)) == len(values), key


def test_every_body_the_demo_sends_is_one_the_gateway_takes():
    for told in stories(5, 300):
        assert schemas.CustomerCreate().validate(told.customer) == {}
        for deal in told.deals:
            body = {"customer_id": "6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a01", "title": deal.title,
                    "amount": deal.amount, "currency": deal.currency, "owner": told.owner,
                    "expected_close_date": deal.expected_close_date}  # fmt: skip
            assert schemas.DealCreate().validate(body) == {}
            if deal.reason:
                assert schemas.DealLost().validate({"reason": deal.reason}) == {}
        for done in told.interactions:
            body = {"customer_id": "6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a01", "channel": done.channel,
                    "direction": done.direction, "subject": done.subject, "outcome": done.outcome,
                    "occurred_at": done.occurred_at}  # fmt: skip
            assert schemas.InteractionCreate().validate(body) == {}
            # Calls, emails and social messages need a direction (the service checks).
            assert done.direction or done.channel in ("meeting", "note")
        for ticket in told.tickets:
            body = {"customer_id": "6a0f1e3b-2c4d-4e5f-8a9b-0c1d2e3f4a01",
                    "subject": ticket.subject, "priority": ticket.priority,
                    "channel": ticket.channel}  # fmt: skip
            assert schemas.TicketCreate().validate(body) == {}


def test_the_data_set_has_every_kind_of_record_a_report_needs():
    everyone = stories(1, 300)
    deals = [deal for told in everyone for deal in told.deals]
    outcomes = Counter(deal.outcome for deal in deals)
    assert outcomes["won"] > 50 and outcomes["lost"] > 50 and outcomes["open"] > 50
    assert set(deal.furthest_stage for deal in deals) == set(demo_data.OPEN_STAGES)
    assert {told.owner for told in everyone} == set(demo_data.REPS)
    tickets = [ticket for told in everyone for ticket in told.tickets]
    assert {ticket.agent for ticket in tickets} == set(demo_data.AGENTS)
    assert sum(ticket.complaint for ticket in tickets) > 20
    assert {ticket.score for ticket in tickets} - {None} == {1, 2, 3, 4, 5}
    # Interactions spread over the past year, none today (the demo may run at any hour).
    moments = sorted(done.occurred_at for told in everyone for done in told.interactions)
    assert moments[0] < "2025-07-15" and moments[-1] < "2026-06-15"
    closes = sorted(deal.expected_close_date for deal in deals)
    assert closes[0] < "2026-05-01" and closes[-1] > "2027-02-01"
