"""Who carries out a rebuild: the first instance to claim it, or one taking over from a
quiet instance; the views are emptied once, when it starts."""

from datetime import timedelta

from sqlalchemy import func, select

from crm_common.envelope import utcnow
from services.reports import rebuild, views
from services.reports.models import CustomerFact, Rebuild
from services.reports.service import apply_customer
from tests.unit.test_reports_funnel import new_session
from tests.unit.test_reports_views import created


def test_a_rebuild_is_claimed_once_empties_the_views_and_is_taken_over_when_quiet(
    sqlite_templates, tmp_path
):
    with new_session(sqlite_templates, tmp_path) as session:
        apply_customer(session, created("c-1"))
        session.commit()
        requested, new = rebuild.request(session, "admin")
        again, new_again = rebuild.request(session, "someone else")
        assert (new, new_again, again.rebuild_id) == (True, False, requested.rebuild_id)

        now = utcnow()
        assert rebuild.claim(session, now) == requested.rebuild_id
        assert session.scalar(select(func.count()).select_from(CustomerFact)) == 0
        # Running, with a fresh heartbeat: nobody else takes it.
        apply_customer(session, created("c-2"))
        session.commit()
        assert rebuild.claim(session, now + timedelta(seconds=5)) is None
        # Quiet past the lease: taken over, the views as they are (not emptied again).
        later = now + rebuild.LEASE + timedelta(seconds=1)
        assert rebuild.claim(session, later) == requested.rebuild_id
        assert session.scalar(select(func.count()).select_from(CustomerFact)) == 1

        rebuild.record_page(
            session,
            requested.rebuild_id,
            "customers",
            {"events": [{}, {}], "next_cursor": "42"},
            1,
        )
        session.commit()
        rebuild.finish(session, requested.rebuild_id)
        shown = rebuild.shown(rebuild.latest(session))
        assert (shown["status"], shown["events_read"], shown["events_applied"]) == ("done", 2, 1)
        assert rebuild.cursors_of(session.get(Rebuild, requested.rebuild_id)) == {"customers": "42"}
        assert rebuild.claim(session, later) is None
        assert rebuild.request(session, "admin")[1] is True


def test_a_read_learns_the_views_state_and_whether_a_rebuild_runs_at_once(
    sqlite_templates, tmp_path
):
    with new_session(sqlite_templates, tmp_path) as session:
        assert rebuild.read_state(session, views.CUSTOMERS_VIEW) == (None, False)
        apply_customer(session, created("c-1"))
        session.commit()
        state, rebuilding = rebuild.read_state(session, views.CUSTOMERS_VIEW)
        assert (state.events_applied, rebuilding) == (1, False)
        requested, _ = rebuild.request(session, "admin")
        assert rebuild.read_state(session, views.CUSTOMERS_VIEW)[1] is True
        rebuild.claim(session, utcnow())
        assert rebuild.read_state(session, views.CUSTOMERS_VIEW)[1] is True
        rebuild.finish(session, requested.rebuild_id)
        assert rebuild.read_state(session, views.CUSTOMERS_VIEW)[1] is False
