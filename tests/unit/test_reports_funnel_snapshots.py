"""The funnel as of a past moment from snapshots against the same answer from every move,
over random event streams delivered out of order, with a stage reorder, late events and
a rebuild."""

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from services.reports import funnel_snapshots, rebuild
from services.reports.funnel_view import funnel_as_of
from services.reports.models import FunnelSnapshot, FunnelSnapshotTotals
from tests.support.streams import as_delivered
from tests.unit.test_reports_funnel import (
    LIVES,
    T0,
    apply_all,
    life,
    new_session,
    pipeline_event,
    stage_list,
    valid_steps,
)
from tests.unit.test_reports_service_desk import session_on

NOW = T0 + timedelta(days=20)
MOMENTS = st.lists(st.integers(-30, 16 * 24), min_size=1, max_size=4)
FILTERS = [
    {},
    {"owner": "kim"},
    {"days": ((T0 + timedelta(days=2)).date().isoformat(), None)},
    {"owner": "sam", "days": (None, (T0 + timedelta(days=3)).date().isoformat())},
]


def reordered_stages():
    stages = stage_list()
    stages[0]["position"], stages[2]["position"] = 2, 0  # proposal before lead
    return stages


def compare(session, hours, filters_used=FILTERS):
    for hour in hours:
        moment = T0 + timedelta(hours=hour)
        for filters in filters_used:
            fast = funnel_snapshots.funnel_as_of(session, moment, NOW, **filters)
            assert fast == funnel_as_of(session, moment, **filters), (hour, filters)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lives=LIVES,
    days=st.lists(st.integers(0, 8), min_size=6, max_size=6),
    reorder=st.booleans(),
    seed=st.integers(0, 10**6),
    asked=MOMENTS,
    checked=MOMENTS,
)
def test_snapshots_give_the_answer_of_every_move(
    sqlite_templates, tmp_path_factory, lives, days, reorder, seed, asked, checked
):
    ordered = [pipeline_event()]
    for number, (first, steps, owner) in enumerate(lives):
        start = T0 + timedelta(days=days[number], hours=number)
        ordered += life(f"d{number}", valid_steps(first, steps), owner=owner, start=start)
    if reorder:
        ordered.append(pipeline_event(2, reordered_stages()))
    delivered = list(as_delivered(ordered, seed))
    with new_session(sqlite_templates, tmp_path_factory.mktemp("snapshots")) as session:
        # The pipeline first (a funnel needs it), then the rest in three parts, with
        # answers asked in between: snapshots made early meet events that arrive late.
        pipeline = [event for event in delivered if event["event_type"] == "pipeline_created"]
        rest = [event for event in delivered if event not in pipeline]
        apply_all(session, pipeline)
        third = len(rest) // 3 + 1
        for part in range(3):
            apply_all(session, rest[part * third : (part + 1) * third])
            compare(session, asked, FILTERS[:1])
        funnel_snapshots.keep_today(session, NOW)
        compare(session, checked)
        assert session.scalar(select(func.count()).select_from(FunnelSnapshot)) >= 1


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_a_late_event_removes_the_snapshots_that_missed_it(make_db_url, kind):
    with session_on(make_db_url(kind, "snapshots", schema="reports")) as session:
        apply_all(session, [pipeline_event()] + life("a", ["lead", "qualified"]))
        late = life("b", ["lead", "won"], start=T0 + timedelta(hours=1))
        moment = T0 + timedelta(days=2)
        assert funnel_snapshots.funnel_as_of(session, moment, NOW)["won"] == 0
        kept = session.scalars(select(FunnelSnapshot.moment)).all()
        assert kept == [funnel_snapshots.midnight(moment)]
        apply_all(session, late)  # happened before the snapshot's moment, arrived after it
        assert session.scalars(select(FunnelSnapshot.moment)).all() == []
        assert funnel_snapshots.funnel_as_of(session, moment, NOW)["won"] == 1
        # Owners with and without a name, written and read back (COPY on PostgreSQL).
        apply_all(session, life("c", ["qualified", "lost"], owner=None, start=T0))
        funnel_snapshots.keep_today(session, NOW)
        for owner in (None, "", "sam"):
            for hours in (5, 30, 24 * 19):
                moment = T0 + timedelta(hours=hours)
                fast = funnel_snapshots.funnel_as_of(session, moment, NOW, owner=owner)
                assert fast == funnel_as_of(session, moment, owner=owner)


def test_a_rebuild_empties_the_snapshots_with_the_views(sqlite_templates, tmp_path):
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, [pipeline_event()] + life("a", ["lead", "won"]))
        funnel_snapshots.keep_today(session, NOW)
        assert session.scalar(select(func.count()).select_from(FunnelSnapshotTotals)) > 0
        rebuild.empty_views(session)
        session.commit()
        for model in (FunnelSnapshot, FunnelSnapshotTotals):
            assert session.scalar(select(func.count()).select_from(model)) == 0


def test_unused_snapshots_go_and_today_s_stays(sqlite_templates, tmp_path):
    with new_session(sqlite_templates, tmp_path) as session:
        apply_all(session, [pipeline_event()] + life("a", ["lead", "won"]))
        funnel_snapshots.funnel_as_of(session, T0 + timedelta(days=1), NOW)
        later = NOW + funnel_snapshots.KEEP_UNUSED + timedelta(days=1)
        funnel_snapshots.keep_today(session, later)
        assert session.scalars(select(FunnelSnapshot.moment)).all() == [
            funnel_snapshots.midnight(later)
        ]
