"""A page of a producer's log replayed by a rebuild: its events applied with the rebuild's
progress, its invalid events kept as dead letters as they would be arriving live."""

from datetime import timedelta

from nameko.testing.services import worker_factory
from sqlalchemy import select

from crm_common.envelope import make_envelope, utcnow
from crm_common.inbox import Inbox, InboxWorker
from services.reports import rebuild
from services.reports.models import AppliedEvent, DeadLetter, InteractionFact, Rebuild
from services.reports.service import ReportsService
from tests.support.fakes import database_for
from tests.support.report_events import T0
from tests.unit.test_reports_batches import interaction_body


def test_a_page_applies_its_events_and_keeps_the_invalid_ones_as_dead_letters(
    sqlite_templates, tmp_path
):
    database = database_for(sqlite_templates.copy("reports", tmp_path / "reports.db"))
    inbox = Inbox(AppliedEvent, DeadLetter)
    inbox.database, inbox.service = database, "reports"
    service = worker_factory(ReportsService, inbox=InboxWorker(inbox, None))
    with database.session() as session:
        requested, _ = rebuild.request(session, "admin")
        rebuild_id = rebuild.claim(session, utcnow())
    valid = interaction_body(1, T0)
    invalid = interaction_body(2, T0 + timedelta(hours=1))
    del invalid["data"]["customer_id"]
    unused = make_envelope(
        event_type="ticket_note_added",
        producer="interactions",
        aggregate_id="t-1",
        sequence=1,
        data={"ticket_id": "t-1"},
    )
    page = {"events": [valid, invalid, unused, "not an event"], "next_cursor": "4"}

    service.apply_page(rebuild_id, "interactions", page)

    with database.session() as session:
        assert session.scalars(select(InteractionFact.interaction_id)).all() == ["i-1"]
        letters = session.scalars(select(DeadLetter).order_by(DeadLetter.first_failed_at)).all()
        assert [letter.body for letter in letters] == [invalid, "not an event"]
        assert {letter.kind for letter in letters} == {"invalid"}
        progress = session.get(Rebuild, rebuild_id)
        assert (progress.events_read, progress.events_applied) == (4, 1)
        assert rebuild.cursors_of(progress) == {"interactions": "4"}
    assert requested.rebuild_id == rebuild_id
