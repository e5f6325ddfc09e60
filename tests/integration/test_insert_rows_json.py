"""Rows inserted on PostgreSQL as one JSON parameter come back as they went in, whatever
their kinds of value; those JSON cannot carry (a NaN, a NUL) take the older way and fail or
land as before."""

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import DBAPIError

from crm_common.db import insert_new, insert_rows, plain_insert
from services.reports.models import DealMove, SalesPerformance, TicketFact
from services.reports.totals import add_many
from tests.support.fakes import database_for

AT = datetime(2026, 3, 1, 23, 30, 0, 123456, tzinfo=UTC)


@pytest.fixture
def database(make_db_url):
    database = database_for(make_db_url("postgres", "reports_json", schema="reports"))
    yield database
    database.engine.dispose()


def move(deal_id, sequence, **changes):
    return {
        "deal_id": deal_id,
        "sequence": sequence,
        "pipeline_id": "p",
        "at": AT + timedelta(seconds=sequence),
        "kind": "moved",
        "from_stage_id": None,
        "to_stage_id": "s2",
        "dwell_seconds": None,
        "stage_id": "s2",
        "status": "open",
        "owner": "zoë «quoted» 'kim' \\ \"x\"",
        "created_at": AT.astimezone(timezone(timedelta(hours=-5))),
        "customer_id": "c",
        "amount_cents": 2**40,
        **changes,
    }


def test_rows_of_every_kind_of_value_come_back_as_they_went_in(database):
    rows = [move("d1", 1), move("d1", 2, owner=None, dwell_seconds=0), move("d2", 1)]
    with database.session() as session:
        inserted = insert_new(session, DealMove, ("deal_id", "sequence"), rows, "sequence")
        again = insert_new(session, DealMove, ("deal_id", "sequence"), rows[:1], "sequence")
        session.commit()
        stored = session.execute(select(DealMove.__table__).order_by("deal_id", "sequence")).all()
    assert inserted == [1, 2, 1] and again == []
    assert [row._asdict() for row in stored] == rows


def test_upserts_add_to_the_rows_they_meet(database):
    with database.session() as session:
        for won in (1, 2):
            add_many(
                session,
                SalesPerformance,
                ("owner", "month", "currency"),
                {("kim", "2026-03", "EUR"): {"won": won, "lost": 0, "won_cents": 10}},
            )
        session.commit()
        row = session.execute(select(SalesPerformance.__table__)).one()
    assert (row.won, row.lost, row.won_cents) == (3, 0, 20)


def ticket(number, **changes):
    return {
        "ticket_id": f"t{number}",
        "customer_id": "c",
        "opened_at": AT,
        "priority": "high",
        "channel": None,
        "assignee": None,
        "assignee_sequence": 0,
        "first_response_seconds": 1.5,
        "resolved": False,
        "resolved_sequence": 0,
        "resolution_seconds": None,
        "resolution_sequence": 0,
        "response_breached": True,
        "resolution_breached": False,
        **changes,
    }


def test_a_value_json_cannot_hold_goes_in_the_older_way(database):
    with database.session() as session:
        insert_rows(session, plain_insert(TicketFact), [ticket(1, first_response_seconds=math.nan)])
        insert_rows(session, plain_insert(TicketFact), [ticket(2)])
        session.commit()
        stored = dict(
            session.execute(select(TicketFact.ticket_id, TicketFact.first_response_seconds)).all()
        )
    assert math.isnan(stored["t1"]) and stored["t2"] == 1.5


def test_a_nul_character_and_a_too_long_value_fail_as_they_did(database):
    statement = postgresql.insert(DealMove.__table__)
    with database.session() as session, pytest.raises(ValueError, match="NUL"):
        insert_rows(session, statement, [move("d1", 1, owner="a\x00b")])
    with database.session() as session, pytest.raises(DBAPIError, match="too long"):
        insert_rows(session, statement, [move("d" * 40, 1)])
