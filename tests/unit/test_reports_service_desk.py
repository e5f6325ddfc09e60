"""Satisfaction and service levels against hand-computed tickets, and against shuffled,
repeated event streams."""

import random
from datetime import date, timedelta
from statistics import median

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError

from services.reports import service_desk
from services.reports.medians import medians
from services.reports.models import TicketFact
from services.reports.schemas import SatisfactionQuery
from services.reports.service import APPLIERS
from services.reports.ticket_view import satisfaction_report, service_report
from tests.support import report_events
from tests.support.fakes import database_for
from tests.support.streams import as_delivered
from tests.unit.test_reports_funnel import new_session

T0 = report_events.TICKETS_T0
HOUR = report_events.HOUR


def ticket(ticket_id, steps, opened_at=T0, agent="kim", channel="email"):
    """Loaded events of report_events.ticket_life."""
    return [
        report_events.load(body)
        for body in report_events.ticket_life(ticket_id, steps, opened_at, agent, channel)
    ]


def session_on(url):
    return database_for(url).session()


def apply_all(session, events):
    for event in events:
        effect, _ = APPLIERS[("interactions", event["event_type"])]
        effect(session, event)
    session.commit()


def test_satisfaction_formulas_by_hand():
    # Scores 5, 4, 4, 2, 1: mean 16 / 5; three of the five score 4 or 5.
    figures = service_desk.satisfaction({5: 1, 4: 2, 2: 1, 1: 1})
    assert figures == {
        "responses": 5,
        "csat_avg": 3.2,
        "csat_pct": 0.6,
        "distribution": [
            {"score": 1, "count": 1},
            {"score": 2, "count": 1},
            {"score": 3, "count": 0},
            {"score": 4, "count": 2},
            {"score": 5, "count": 1},
        ],
    }
    assert service_desk.satisfaction({}) == {
        "responses": 0,
        "csat_avg": None,
        "csat_pct": None,
        "distribution": [{"score": score, "count": 0} for score in range(1, 6)],
    }


def test_service_formulas_by_hand():
    tickets = [
        service_desk.Ticket(600, True, 7200, False, False),
        service_desk.Ticket(1800, True, 3600, True, False),
        service_desk.Ticket(300, False, None, False, True),
        service_desk.Ticket(None, False, None, True, True),
    ]
    assert service_desk.service_levels(tickets) == {
        "opened": 4,
        "resolved": 2,
        "resolution_rate": 0.5,
        "median_first_response_seconds": 600.0,  # of 300, 600, 1800
        "median_resolution_seconds": 5400.0,  # of 3600, 7200
        "breached": 3,
        "first_response_breaches": 2,
        "resolution_breaches": 2,
        "sla_breach_rate": 0.75,
    }
    assert service_desk.service_levels([])["resolution_rate"] is None


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_service_levels_of_hand_computed_tickets(make_db_url, kind):
    events = (
        ticket("t1", [("assign", 0.5), ("respond", 1), ("resolve", 3), ("close", 4)])
        # Reopened after its first resolution, resolved again at 10 hours: that one counts.
        + ticket(
            "t2",
            [("assign", 1, "ann"), ("respond", 2), ("resolve", 5), ("reopen", 6), ("resolve", 10)],
        )
        # Reopened and not resolved since: not resolved; breached its resolution target.
        + ticket(
            "t3",
            [
                ("assign", 1),
                ("respond", 5),
                ("breach", 4, "first_response"),
                ("resolve", 6),
                ("reopen", 7),
                ("breach", 24, "resolution"),
            ],
        )
        # Never touched: breached its first response, twice reported (a duplicate alert).
        + ticket("t4", [("breach", 4, "first_response"), ("breach", 5, "first_response")])
        # Opened the next month: outside the period asked for below.
        + ticket("t5", [("assign", 1)], opened_at=T0 + timedelta(days=40))
    )
    with session_on(make_db_url(kind, "service_desk", schema="reports")) as session:
        apply_all(session, events)
        report = service_report(session, days=(date(2027, 3, 1), date(2027, 3, 31)))
        assert {key: report[key] for key in report if key != "by_agent"} == {
            "opened": 4,
            "resolved": 2,
            "resolution_rate": 0.5,
            "median_first_response_seconds": 2 * HOUR,  # of 1, 2, 5 hours
            "median_resolution_seconds": 6.5 * HOUR,  # of 3 and 10 hours
            "breached": 2,
            "first_response_breaches": 2,
            "resolution_breaches": 1,
            "sla_breach_rate": 0.5,
        }
        by_agent = {row["agent"]: row for row in report["by_agent"]}
        assert list(by_agent) == [None, "ann", "kim"]
        assert (by_agent[None]["opened"], by_agent[None]["breached"]) == (1, 1)
        assert by_agent["ann"]["median_resolution_seconds"] == 10 * HOUR
        assert (by_agent["kim"]["opened"], by_agent["kim"]["resolved"]) == (2, 1)
        assert service_report(session, agent="kim", days=(date(2027, 4, 1), None))["opened"] == 1


def test_postgres_one_statement_gives_the_answers_of_the_statements_sqlite_asks(make_db_url):
    """Random tickets (nulls, unassigned, reopened), every filter: the grouping-sets
    statement and the separate counts and medians agree, even over no ticket at all."""
    rng = random.Random(7)
    agents = [None, "ann", "bo", "cy"]
    with session_on(make_db_url("postgres", "service_at_once", schema="reports")) as session:
        for number in range(300):
            resolved = rng.random() < 0.6
            session.add(
                TicketFact(
                    ticket_id=f"t{number}",
                    customer_id="c",
                    opened_at=T0 + timedelta(hours=rng.randrange(24 * 60)),
                    priority=rng.choice(["low", "normal", "high"]),
                    channel=rng.choice([None, "email", "phone"]),
                    assignee=rng.choice(agents),
                    assignee_sequence=1,
                    first_response_seconds=rng.choice([None, rng.randrange(1, 9000)]),
                    resolved=resolved,
                    resolved_sequence=1,
                    # A reopened ticket keeps its old resolution time: it must not count.
                    resolution_seconds=rng.choice([None, rng.randrange(1, 90000)]),
                    resolution_sequence=1,
                    response_breached=rng.random() < 0.2,
                    resolution_breached=rng.random() < 0.2,
                )
            )
        session.commit()
        asked = [
            {},
            {"days": (date(2027, 3, 10), date(2027, 4, 2))},
            {"agent": "ann"},
            {"priority": "high", "channel": "phone"},
            {"days": (date(2031, 1, 1), None)},  # no ticket
        ]
        for filters in asked:
            one = service_report(session, **filters, at_once=True)
            several = service_report(session, **filters, at_once=False)
            assert one == several, filters
        assert service_report(session, days=(date(2031, 1, 1), None))["opened"] == 0


def test_both_median_forms_give_python_s_median_per_group(make_db_url):
    """percentile_cont (PostgreSQL) and the numbered-rows form (SQLite, and PostgreSQL
    when asked) against statistics.median, over odd and even groups, ties and nulls."""
    seconds = {
        "kim": [5.5, 1.0, 3.25, None, 3.25],  # odd: the middle one
        "ann": [10.0, 2.0, 7.5, 4.0],  # even: the mean of the two middle ones
        "bo": [None],  # nothing to take the median of
        None: [42.0],
    }
    tickets = [
        service_desk.Ticket(value, False, None, False, False)
        for values in seconds.values()
        for value in values
    ]
    expected = {
        agent: median(value for value in values if value is not None)
        for agent, values in seconds.items()
        if any(value is not None for value in values)
    }
    for kind in ("sqlite", "postgres"):
        with session_on(make_db_url(kind, "medians", schema="reports")) as session:
            number = 0
            for agent, values in seconds.items():
                for value in values:
                    number += 1
                    session.add(
                        TicketFact(
                            ticket_id=f"t{number}",
                            customer_id="c",
                            priority="normal",
                            assignee=agent,
                            assignee_sequence=1,
                            first_response_seconds=value,
                            resolved=False,
                            resolved_sequence=0,
                            resolution_sequence=0,
                            response_breached=False,
                            resolution_breached=False,
                        )
                    )
            session.commit()
            forms = (None, True) if kind == "postgres" else (None,)
            for window in forms:
                value = TicketFact.first_response_seconds
                grouped = medians(session, value, [], TicketFact.assignee, window=window)
                assert {key: float(found) for key, found in grouped.items()} == expected
                overall = medians(session, value, [], window=window)
                assert float(overall[None]) == median(
                    ticket.first_response_seconds
                    for ticket in tickets
                    if ticket.first_response_seconds is not None
                )
                assert medians(session, value, [TicketFact.assignee == "bo"], window=window) == {}


def test_satisfaction_by_agent_month_and_channel_and_as_of(sqlite_templates, tmp_path):
    march, april = T0, T0 + timedelta(days=35)
    events = (
        ticket("t1", [("assign", 0), ("resolve", 2), ("satisfaction", 3, 5)], march)
        + ticket(
            "t2",
            [("assign", 0, "ann"), ("resolve", 2), ("satisfaction", 3, 2)],
            march,
            channel="phone",
        )
        + ticket("t3", [("assign", 0), ("resolve", 2), ("satisfaction", 3, 4)], april)
    )
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, events)
        overall = satisfaction_report(session)
        assert (overall["responses"], overall["csat_avg"], overall["csat_pct"]) == (
            3,
            3.6667,
            0.6667,
        )
        by_month = satisfaction_report(session, group_by="month")["groups"]
        assert [(row["month"], row["responses"], row["csat_avg"]) for row in by_month] == [
            ("2027-03", 2, 3.5),
            ("2027-04", 1, 4.0),
        ]
        by_agent = satisfaction_report(session, group_by="agent")["groups"]
        assert [(row["agent"], row["csat_pct"]) for row in by_agent] == [("ann", 0.0), ("kim", 1.0)]
        by_channel = satisfaction_report(session, group_by="channel", agent="kim")["groups"]
        assert [(row["channel"], row["responses"]) for row in by_channel] == [("email", 2)]
        then = satisfaction_report(session, as_of=april - timedelta(days=1))
        assert (then["responses"], then["csat_avg"]) == (2, 3.5)
        in_april = satisfaction_report(session, days=(date(2027, 4, 1), date(2027, 4, 30)))
        assert in_april["responses"] == 1


STEPS = st.lists(
    st.tuples(
        st.sampled_from(["assign", "respond", "resolve", "close", "reopen", "breach"]),
        st.integers(0, 48),
        st.sampled_from(["kim", "ann", "first_response", "resolution"]),
    ),
    max_size=8,
)


def valid_steps(steps):
    """Keep the steps the ticket workflow allows, in order of time; a breach names its kind."""
    kept, status = [], "open"
    allowed = {
        "assign": ("open", "assigned", "responded"),
        "respond": ("assigned", "responded"),
        "resolve": ("responded",),
        "close": ("resolved",),
        "reopen": ("resolved",),
    }
    after = {
        "assign": None,
        "respond": "responded",
        "resolve": "resolved",
        "close": "closed",
        "reopen": "assigned",
    }
    for hours, (name, _, value) in enumerate(steps):
        if name == "breach":
            if value in ("first_response", "resolution"):
                kept.append((name, hours, value))
        elif status in allowed[name]:
            agent = value if value in ("kim", "ann") else "kim"
            kept.append((name, hours, agent) if name == "assign" else (name, hours))
            status = after[name] or ("assigned" if status == "open" else status)
    if status in ("resolved", "closed"):
        kept.append(("satisfaction", len(steps), 1 + len(kept) % 5))
    return kept


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tickets=st.lists(STEPS, min_size=1, max_size=6), seed=st.integers(0, 10**6))
def test_shuffled_and_repeated_events_give_the_views_of_the_ordered_stream(
    sqlite_templates, tmp_path_factory, tickets, seed
):
    ordered = []
    for number, steps in enumerate(tickets):
        ordered += ticket(f"t{number}", valid_steps(steps), opened_at=T0 + timedelta(days=number))
    base = tmp_path_factory.mktemp("service")
    with (
        new_session(sqlite_templates, base, "ordered") as one,
        new_session(sqlite_templates, base, "shuffled") as other,
    ):
        apply_all(one, ordered)
        for event in as_delivered(ordered, seed):
            apply_all(other, [event])
        assert service_report(other) == service_report(one)
        for group_by in (None, "agent", "month"):
            assert satisfaction_report(other, group_by=group_by) == satisfaction_report(
                one, group_by=group_by
            )


def test_a_report_query_refuses_a_moment_utc_cannot_hold():
    for moment in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        try:
            SatisfactionQuery().load({"as_of": moment})
        except ValidationError as exc:
            assert "as_of" in exc.messages
        else:
            raise AssertionError(f"{moment} was taken")
