"""Deals won as of a past moment, as segments read them, against a plain reading of the
moves, over random deal lives delivered out of order."""

from datetime import timedelta

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from services.reports import segment_view
from services.reports.models import DealMove
from tests.support.streams import as_delivered
from tests.unit.test_reports_funnel import (
    LIVES,
    T0,
    apply_all,
    life,
    new_session,
    pipeline_event,
    valid_steps,
)


def won_by_hand(moves, as_of):
    """Each deal's last move up to `as_of` (by sequence); if it says won, the deal's
    customer, latest win up to then and amount."""
    by_deal = {}
    for move in sorted(moves, key=lambda move: (move.deal_id, move.sequence)):
        if move.at <= as_of:
            by_deal.setdefault(move.deal_id, []).append(move)
    won = []
    for deal_moves in by_deal.values():
        last = deal_moves[-1]
        if last.status == "won":
            wins = [move.at for move in deal_moves if move.kind == "won"]
            won.append((last.customer_id, max(wins) if wins else None, last.amount_cents))
    return sorted(won, key=repr)


def as_rows(frame):
    return sorted(
        (
            customer_id,
            None if pd.isna(closed_at) else pd.Timestamp(closed_at).to_pydatetime(),
            int(amount_cents),
        )
        for customer_id, closed_at, amount_cents in frame.itertuples(index=False, name=None)
    )


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    lives=LIVES,
    seed=st.integers(0, 10**6),
    hours=st.lists(st.integers(-2, 40), min_size=1, max_size=5),
)
def test_won_deals_as_of_a_moment_are_those_the_moves_tell(
    sqlite_templates, tmp_path_factory, lives, seed, hours
):
    ordered = [pipeline_event()]
    for number, (first, steps, owner) in enumerate(lives):
        events = life(f"d{number}", valid_steps(first, steps), owner=owner)
        for event in events:
            event["data"]["deal"]["customer_id"] = f"c-{number % 3}"
            event["data"]["deal"]["amount"] = f"{100 + number}.00"
        ordered += events
    with new_session(sqlite_templates, tmp_path_factory.mktemp("won")) as session:
        apply_all(session, list(as_delivered(ordered, seed)))
        moves = session.scalars(select(DealMove)).all()
        for hour in hours:
            moment = T0 + timedelta(hours=hour)
            assert as_rows(segment_view._won_at(session, moment)) == won_by_hand(moves, moment)
