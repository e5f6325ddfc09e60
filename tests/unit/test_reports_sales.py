"""Sales performance and the weighted forecast, against hand-computed numbers."""

import itertools
import random
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crm_common.envelope import load_envelope, make_envelope
from services.reports import sales, views
from services.reports.schemas import DealEventData, PipelineEventData
from services.reports.service import apply_deal, apply_pipeline
from tests.support.fakes import database_for

T0 = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def session(make_db_url):
    url = make_db_url("sqlite", "reports", schema="reports")
    with database_for(url).session() as session:
        yield session


def deal_event(deal_id, sequence, **state):
    deal = {
        "deal_id": deal_id,
        "customer_id": "c-1",
        "pipeline_id": "p-1",
        "stage_id": "s-1",
        "stage": "lead",
        "probability": 0.1,
        "status": "open",
        "title": "t",
        "amount": "100.00",
        "currency": "EUR",
        "owner": "sam",
        "expected_close_date": "2027-03-15",
        "created_at": T0.isoformat(),
        "closed_at": None,
        **state,
    }
    body = make_envelope(
        event_type="deal_updated",
        producer="pipeline",
        aggregate_id=deal_id,
        sequence=sequence,
        occurred_at=T0,
        data={"deal_id": deal_id, "deal": deal},
    )
    return load_envelope(body, DealEventData())


def report(session, **filters):
    return views.sales_report(session, **filters)


def test_weighted_amounts_round_to_the_cent_per_deal():
    assert sales.weighted_cents(12345, Decimal("0.25")) == 3086  # 3086.25
    assert sales.weighted_cents(10, Decimal("0.25")) == 2  # 2.5 rounds to even
    assert sales.weighted_cents(30, Decimal("0.25")) == 8  # 7.5 rounds to even


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))  # a BigInteger column's range
def test_amounts_are_written_from_cents_exactly_with_two_decimals(cents):
    written = sales.from_cents(cents)
    assert re.fullmatch(r"-?(0|[1-9][0-9]*)\.[0-9]{2}", written)
    assert written == str((Decimal(cents) / 100).quantize(Decimal("0.01")))
    assert sales.to_cents(written) == cents


def test_win_rate_is_won_over_closed_and_null_over_none():
    assert sales.win_rate(3, 1) == 0.75
    assert sales.win_rate(0, 2) == 0.0
    assert sales.win_rate(0, 0) is None


def test_moves_take_back_the_old_state_and_add_the_new():
    old = sales.DealState("open", "sam", "EUR", 1000, Decimal("0.5"), "2027-03-01", None)
    new = sales.DealState("won", "sam", "EUR", 1200, Decimal("1"), "2027-03-01", "2027-02-02T10:00")
    assert sales.moves(old, new) == [
        (
            sales.FORECAST,
            ("sam", "2027-03", "EUR"),
            {"deals": -1, "amount_cents": -1000, "weighted_cents": -500},
        ),
        (sales.PERFORMANCE, ("sam", "2027-02", "EUR"), {"won": 1, "lost": 0, "won_cents": 1200}),
    ]


def test_performance_and_forecast_from_hand_computed_deals(session):
    events = [
        # sam: two won in February (100.00 + 250.50 EUR), one lost in February, one open.
        deal_event("d1", 3, status="won", amount="100.00", closed_at="2027-02-01T09:00:00+00:00"),
        deal_event("d2", 2, status="won", amount="250.50", closed_at="2027-02-27T09:00:00+00:00"),
        deal_event("d3", 2, status="lost", closed_at="2027-02-03T09:00:00+00:00"),
        deal_event("d4", 1, amount="1000.00", probability=0.25, expected_close_date="2027-04-30"),
        # kim: one open without a date, one open in April in USD, one lost in March.
        deal_event("d5", 1, owner="kim", amount="80.00", probability=0.5, expected_close_date=None),
        deal_event(
            "d6",
            1,
            owner="kim",
            currency="USD",
            amount="10.10",
            probability=0.75,
            expected_close_date="2027-04-01",
        ),
        deal_event("d7", 4, owner="kim", status="lost", closed_at="2027-03-09T00:00:00+00:00"),
    ]
    for event in events:
        views.apply_deal_event(session, event)
    session.commit()
    result = report(session)
    assert result["performance"] == [
        {
            "owner": "sam",
            "month": "2027-02",
            "won_amount": {"EUR": "350.50"},
            "won": 2,
            "lost": 1,
            "win_rate": 2 / 3,
        },
        {
            "owner": "kim",
            "month": "2027-03",
            "won_amount": {},
            "won": 0,
            "lost": 1,
            "win_rate": 0.0,
        },
    ]
    assert result["forecast"] == [
        {
            "month": "2027-04",
            "owner": "kim",
            "currency": "USD",
            "deals": 1,
            "amount": "10.10",
            "weighted_amount": "7.58",
        },
        {
            "month": "2027-04",
            "owner": "sam",
            "currency": "EUR",
            "deals": 1,
            "amount": "1000.00",
            "weighted_amount": "250.00",
        },
        {
            "month": "unscheduled",
            "owner": "kim",
            "currency": "EUR",
            "deals": 1,
            "amount": "80.00",
            "weighted_amount": "40.00",
        },
    ]
    assert [row["owner"] for row in report(session, owner="kim")["performance"]] == ["kim"]
    dated = report(session, window=sales.Window("2027-03", "2027-04", unscheduled=False))
    assert [row["month"] for row in dated["performance"]] == ["2027-03"]
    assert [row["month"] for row in dated["forecast"]] == ["2027-04", "2027-04"]
    assert (dated["from"], dated["to"]) == ("2027-03", "2027-04")
    since = report(session, window=sales.window("2027-03", None, datetime(2030, 1, 1, tzinfo=UTC)))
    assert [row["month"] for row in since["forecast"]] == ["2027-04", "2027-04"]
    # The default window, in February 2028: March 2027 is within the 11 months before, February not;
    # the unscheduled forecast stays.
    default = report(session, window=sales.window(None, None, datetime(2028, 2, 10, tzinfo=UTC)))
    assert (default["from"], default["to"]) == ("2027-03", "2029-02")
    assert [row["month"] for row in default["performance"]] == ["2027-03"]
    assert [row["month"] for row in default["forecast"]] == ["2027-04", "2027-04", "unscheduled"]


def test_the_default_window_is_the_last_twelve_months_and_the_next_twelve():
    january = datetime(2027, 1, 31, 23, 59, tzinfo=UTC)
    assert sales.window(None, None, january) == sales.Window("2026-02", "2028-01", True)
    december = datetime(2026, 12, 1, tzinfo=UTC)
    assert sales.window(None, None, december) == sales.Window("2026-01", "2027-12", True)
    assert sales.window(None, "2027-05", december) == sales.Window(None, "2027-05", False)
    assert sales.shift_month(datetime(1, 1, 1, tzinfo=UTC), 0) == "0001-01"


def deal_history(deal_id):
    """One deal's life: created open, moved, won, reopened, lost."""
    return [
        deal_event(deal_id, 1, amount="500.00"),
        deal_event(deal_id, 2, amount="500.00", probability=0.5, stage="proposal"),
        deal_event(
            deal_id,
            3,
            status="won",
            amount="500.00",
            probability=1,
            closed_at="2027-02-01T00:00:00+00:00",
        ),
        deal_event(deal_id, 4, amount="600.00", probability=0.75),
        deal_event(
            deal_id,
            5,
            status="lost",
            amount="600.00",
            probability=0,
            closed_at="2027-03-01T00:00:00+00:00",
        ),
    ]


def test_out_of_order_and_repeated_events_end_where_the_ordered_stream_ends(session, make_db_url):
    ordered = [event for deal_id in ("a", "b", "c") for event in deal_history(deal_id)]
    for event in ordered:
        views.apply_deal_event(session, event)
    session.commit()
    expected = report(session)

    url = make_db_url("sqlite", "shuffled", schema="reports")
    shuffled = ordered + ordered[:7]
    random.Random(7).shuffle(shuffled)
    with database_for(url).session() as other:
        for event in shuffled:
            views.apply_deal_event(other, event)
        other.commit()
        assert report(other) == expected
    assert expected["performance"] == [
        {
            "owner": "sam",
            "month": "2027-03",
            "won_amount": {},
            "won": 0,
            "lost": 3,
            "win_rate": 0.0,
        }
    ]
    assert expected["forecast"] == []


def test_every_order_of_one_deals_events_gives_the_same_totals(make_db_url):
    events = deal_history("d")[:4]
    results = []
    orders = random.Random(3).sample(list(itertools.permutations(events)), 8)
    for number, order in enumerate(orders):
        url = make_db_url("sqlite", f"p{number}", schema="reports")
        with database_for(url).session() as session:
            for event in order:
                views.apply_deal_event(session, event)
            session.commit()
            results.append(report(session))
    assert all(result == results[0] for result in results)
    assert results[0]["forecast"][0]["weighted_amount"] == "450.00"


def test_one_owners_month_counts_every_currency_and_keeps_amounts_apart(session):
    for number, (currency, status) in enumerate(
        [("EUR", "won"), ("USD", "won"), ("USD", "lost"), ("GBP", "lost")]
    ):
        views.apply_deal_event(
            session,
            deal_event(
                f"d{number}",
                2,
                currency=currency,
                status=status,
                amount="10.00",
                closed_at="2027-02-01T09:00:00+00:00",
            ),
        )
    session.commit()
    assert report(session)["performance"] == [
        {
            "owner": "sam",
            "month": "2027-02",
            "won_amount": {"EUR": "10.00", "USD": "10.00"},
            "won": 2,
            "lost": 2,
            "win_rate": 0.5,
        }
    ]


def pipeline_event(sequence, probability):
    body = make_envelope(
        event_type="pipeline_changed",
        producer="pipeline",
        aggregate_id="p-1",
        sequence=sequence,
        occurred_at=T0,
        data={
            "pipeline_id": "p-1",
            "name": "Sales",
            "is_default": True,
            "stages": [
                {
                    "stage_id": "s-1",
                    "name": "lead",
                    "kind": "open",
                    "position": 0,
                    "probability": probability,
                },
                {
                    "stage_id": "s-won",
                    "name": "won",
                    "kind": "won",
                    "position": 1,
                    "probability": 1.0,
                },
            ],
        },
    )
    return load_envelope(body, PipelineEventData())


def weighted(session):
    return [row["weighted_amount"] for row in report(session)["forecast"]]


@pytest.mark.parametrize("pipeline_first", [False, True])
def test_the_forecast_weighs_open_deals_by_their_stages_probability_now(session, pipeline_first):
    deal = deal_event("d1", 1, amount="1000.00", probability=0.1)
    changes = [pipeline_event(1, 0.1), pipeline_event(2, 0.4)]
    events = [*changes, deal] if pipeline_first else [changes[0], deal, changes[1]]
    for event in events:
        if event["event_type"] == "pipeline_changed":
            apply_pipeline(session, event)
        else:
            apply_deal(session, event)
    session.commit()
    assert weighted(session) == ["400.00"]
    # An older pipeline event arriving late changes nothing.
    apply_pipeline(session, pipeline_event(1, 0.1))
    session.commit()
    assert weighted(session) == ["400.00"]
