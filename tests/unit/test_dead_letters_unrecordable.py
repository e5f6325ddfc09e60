"""On PostgreSQL, an event the database cannot store as it came is a dead letter,
not an outage that sends it (and a reports batch with it) back to the queue forever.

Two bodies the broker delivers as they are (kombu's JSON decoder takes both):
- an aggregate_id holding a NUL character: psycopg2 refuses any text parameter with
  one ("A string literal cannot contain NUL (0x00) characters.", a ValueError), and the
  envelope schema lets it through; the claim fails on it, then so does the dead letter,
  which stores the aggregate_id;
- a NaN number (`"sequence": NaN`): the schema refuses it, and the dead letter's `body`
  column, PostgreSQL `json`, refuses the NaN token that json.dumps writes.
Either way the inbox takes the failed dead letter for a database it cannot reach and
raises, for the handler to requeue the message: it comes back and fails the same way.
"""

import uuid

import pytest
from sqlalchemy import select

from crm_common import dead_letters
from crm_common.inbox import InboxWorker
from services.reports.models import AppliedEvent, DeadLetter
from services.reports.schemas import CustomerCreatedData
from services.reports.service import apply_customer
from tests.support.fakes import bound_inbox, database_for
from tests.support.streams import customer_created


@pytest.mark.parametrize(
    "change", [{"aggregate_id": "c-1\x00"}, {"sequence": float("nan")}], ids=["nul", "nan"]
)
def test_an_event_postgresql_cannot_store_as_it_came_is_kept_as_a_dead_letter(
    make_db_url, monkeypatch, change
):
    monkeypatch.setattr("crm_common.inbox.RETRY_PAUSE_SECONDS", 0)
    database = database_for(make_db_url("postgresql", "reports_unrecordable", schema="reports"))
    inbox = bound_inbox(
        AppliedEvent, DeadLetter, database, service_name=f"test-{uuid.uuid4().hex[:12]}"
    )
    worker = InboxWorker(
        inbox, dead_letters.Consumer("apply_customer_created", "customers", "customer_created")
    )
    body = {**customer_created("c-1"), **change}

    try:
        outcome = worker.apply(body, apply_customer, CustomerCreatedData())
    except Exception as exc:  # noqa: BLE001  what the handler would requeue, forever
        outcome = f"raised for a requeue: {type(exc).__name__}: {exc}"

    assert outcome is False
    with database.session() as session:
        assert session.scalars(select(DeadLetter.message_key)).all() == [body["event_id"]]
