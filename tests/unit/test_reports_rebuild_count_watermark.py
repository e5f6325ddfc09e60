"""A rebuild counts every deal at its end (deal_counts.count_every_deal), after the last
deal event it replayed: the funnel's answers cached before that count are keyed by the
funnel view's watermark (services/reports/cache.py), so the count must move it, or the
uncounted funnel read during the rebuild is served as the rebuilt one until it expires."""

import pytest

from services.reports import deal_counts, funnel_view, rebuild
from services.reports.service import apply_pipeline, replay_deal
from tests.support import report_events
from tests.support.fakes import database_for


def watermark(session):
    state, _ = rebuild.read_state(session, funnel_view.FUNNEL_VIEW)
    return state.events_applied


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_counting_every_deal_moves_the_funnel_watermark(make_db_url, kind):
    database = database_for(make_db_url(kind, "count_watermark", schema="reports"))
    try:
        with database.session() as session:
            apply_pipeline(session, report_events.load(report_events.pipeline_body()))
            for body in report_events.life("d1", ["lead", "qualified", "won"]):
                replay_deal(session, report_events.load(body))
            session.commit()
            before = watermark(session)
            uncounted = funnel_view.funnel_report(session)
            session.rollback()

            deal_counts.count_every_deal(session)
            session.commit()

            counted = funnel_view.funnel_report(session)
            assert counted != uncounted  # the count changed the funnel's answer...
            assert watermark(session) != before  # ...so answers cached at `before` go stale
    finally:
        database.engine.dispose()
