"""Events applied many at once (the inbox's group commit, a rebuild's page) build the views
that one ordered pass of single events builds, whatever the batches and the order."""

import random
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from crm_common.envelope import make_envelope
from crm_common.inbox import apply_many
from services.reports import funnel_view, views
from services.reports.models import (
    AppliedEvent,
    DealFact,
    DealStageCounts,
    FunnelTotals,
    InteractionFact,
    SalesForecast,
    SalesPerformance,
    ViewState,
)
from services.reports.service import APPLIERS
from tests.support import report_events
from tests.support.streams import shuffled_with_repeats
from tests.unit.test_reports_funnel import LIVES, new_session, valid_steps

COMPARED = (
    DealFact,
    DealStageCounts,
    FunnelTotals,
    SalesPerformance,
    SalesForecast,
    InteractionFact,
)
TOTALS = (FunnelTotals, SalesPerformance, SalesForecast)


def interaction_body(number, at):
    return make_envelope(
        event_type="interaction_logged",
        producer="interactions",
        aggregate_id=f"i-{number}",
        sequence=1,
        data={
            "interaction_id": f"i-{number}",
            "customer_id": f"c-{number % 3}",
            "channel": "call",
            "occurred_at": at.isoformat(),
            "logged_by": "kim",
        },
        occurred_at=at,
    )


def stream(lives, interactions):
    bodies = [report_events.pipeline_body()]
    for number, (first, steps, owner) in enumerate(lives):
        bodies += report_events.life(f"d{number}", valid_steps(first, steps), owner=owner)
    bodies += [
        interaction_body(number, report_events.T0 + timedelta(hours=number))
        for number in range(interactions)
    ]
    return bodies


def effect_of(envelope):
    return APPLIERS[(envelope["producer"], envelope["event_type"])][0]


def apply_in_random_batches(session, delivered, seed, batch_size):
    """Batches of random sizes up to `batch_size`, some of one event, each committed: a
    repeat meets its first delivery in the same batch or in the database."""
    rng, start = random.Random(seed), 0
    while start < len(delivered):
        size = rng.randint(1, batch_size)
        apply_many(session, AppliedEvent, delivered[start : start + size], effect_of)
        session.commit()
        start += size


def contents(session, models=COMPARED):
    """The rows of the views' `models`; totals rows that count nothing are left out (events one by
    one leave such rows behind where a batch's moves cancel out before they are written)."""
    tables = {}
    for model in models:
        table = model.__table__
        keys = [column.name for column in table.primary_key.columns]
        rows = session.execute(select(table).order_by(*table.primary_key.columns)).all()
        if model in TOTALS:
            rows = [
                row
                for row in rows
                if any(value for name, value in row._mapping.items() if name not in keys)
            ]
        tables[table.name] = rows
    tables["view_state"] = session.execute(
        select(ViewState.view, ViewState.as_of, ViewState.events_applied).order_by(ViewState.view)
    ).all()
    return tables


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lives=LIVES,
    interactions=st.integers(0, 6),
    seed=st.integers(0, 10**6),
    batch_size=st.integers(2, 40),
)
def test_batches_of_shuffled_repeated_events_build_the_views_of_one_ordered_pass(
    sqlite_templates, tmp_path_factory, lives, interactions, seed, batch_size
):
    ordered = [report_events.load(body) for body in stream(lives, interactions)]
    base = tmp_path_factory.mktemp("batches")
    with (
        new_session(sqlite_templates, base, "ordered") as one,
        new_session(sqlite_templates, base, "batched") as other,
    ):
        for envelope in ordered:
            assert apply_many(one, AppliedEvent, [envelope], effect_of) == {
                str(envelope["event_id"])
            }
        one.commit()
        apply_in_random_batches(other, shuffled_with_repeats(ordered, seed), seed, batch_size)
        assert contents(other) == contents(one)
        for owner in (None, "kim"):
            assert funnel_view.funnel_report(other, owner=owner) == funnel_view.funnel_report(
                one, owner=owner
            )
        assert views.sales_report(other) == views.sales_report(one)
