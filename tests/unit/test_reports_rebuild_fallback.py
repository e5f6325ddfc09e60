"""A rebuild page that falls back to applying its events one by one records each
invalid event of the page once, as the live path does."""

from datetime import timedelta

from nameko.testing.services import worker_factory
from sqlalchemy import select
from sqlalchemy.exc import DataError

from crm_common.envelope import utcnow
from crm_common.inbox import Inbox, InboxWorker, batched
from services.reports import rebuild
from services.reports import service as reports_service
from services.reports.models import AppliedEvent, DeadLetter, InteractionFact
from services.reports.service import ReportsService
from tests.support.fakes import database_for
from tests.support.report_events import T0
from tests.unit.test_reports_batches import interaction_body

LOGGED = ("interactions", "interaction_logged")


def test_an_invalid_event_of_a_page_applied_one_by_one_is_recorded_once(
    sqlite_templates, tmp_path, monkeypatch
):
    database = database_for(sqlite_templates.copy("reports", tmp_path / "reports.db"))
    inbox = Inbox(AppliedEvent, DeadLetter)
    inbox.database, inbox.service = database, "reports"
    service = worker_factory(ReportsService, inbox=InboxWorker(inbox, None))
    real_effect, schema = reports_service.APPLIERS[LOGGED]

    def refusing_i3(session, envelopes):
        # A value the database refuses (a text too long for its column, say).
        if any(envelope["aggregate_id"] == "i-3" for envelope in envelopes):
            raise DataError("INSERT INTO interaction_facts", {}, Exception("value too long"))
        real_effect.apply_all(session, envelopes)

    monkeypatch.setitem(reports_service.APPLIERS, LOGGED, (batched(refusing_i3), schema))
    with database.session() as session:
        rebuild.request(session, "admin")
        rebuild_id = rebuild.claim(session, utcnow())
    valid = interaction_body(1, T0)
    invalid = interaction_body(2, T0 + timedelta(hours=1))
    del invalid["data"]["customer_id"]
    refused = interaction_body(3, T0 + timedelta(hours=2))
    page = {"events": [valid, invalid, refused], "next_cursor": "3"}

    service.apply_page(rebuild_id, "interactions", page)

    with database.session() as session:
        assert session.scalars(select(InteractionFact.interaction_id)).all() == ["i-1"]
        letters = {
            letter.aggregate_id: (letter.kind, letter.attempts)
            for letter in session.scalars(select(DeadLetter))
        }
    # The refused event failed once; the invalid one was refused once, before the page
    # was tried, and must not count a second failure when the page goes one by one.
    assert letters == {"i-3": ("permanent", 1), "i-2": ("invalid", 1)}
