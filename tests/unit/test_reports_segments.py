"""Segments: RFM and engagement tiers against hand-computed customers."""

from datetime import UTC, datetime, timedelta

import pandas as pd

from services.reports import segments

NOW = datetime(2027, 6, 1, tzinfo=UTC)


def days_ago(days):
    return NOW - timedelta(days=days)


def frames(customers, won=(), engaged=()):
    return (
        pd.DataFrame(customers, columns=["customer_id", "created_at"]),
        pd.DataFrame(list(won), columns=["customer_id", "closed_at", "amount_cents"]),
        pd.DataFrame(list(engaged), columns=["customer_id", "interactions"]),
    )


def test_each_tier_from_its_rule():
    old = days_ago(1000)
    assigned = segments.assign(
        *frames(
            [
                ("big", old),
                ("quiet", old),
                ("steady", old),
                ("new", days_ago(10)),
                ("talking", old),
                ("gone", old),
                ("big_long_ago", old),
            ],
            won=[
                ("big", days_ago(30), 600_000),
                ("big", days_ago(200), 500_000),
                ("quiet", days_ago(400), 50_000),
                ("steady", days_ago(20), 100_000),
                ("big_long_ago", days_ago(500), 5_000_000),
            ],
            engaged=[("talking", 3), ("steady", 1)],
        ),
        NOW,
    )
    assert assigned["segment"].to_dict() == {
        "big": "high_value",  # 11,000.00 won, last 30 days ago
        "quiet": "at_risk",  # bought, 400 days ago, no contact
        "steady": "regular",
        "new": "potential",  # created 10 days ago
        "talking": "potential",  # engaged, no purchase
        "gone": "inactive",
        "big_long_ago": "at_risk",  # big, but 500 days ago and silent
    }
    big = assigned.loc["big"]
    assert (big["frequency"], big["monetary_cents"], big["recency_days"]) == (2, 1_100_000, 30)
    assert pd.isna(assigned.loc["gone", "recency_days"])


def test_an_at_risk_buyer_who_talks_again_is_regular():
    assigned = segments.assign(
        *frames(
            [("c", days_ago(900))],
            won=[("c", days_ago(400), 100)],
            engaged=[("c", 1)],
        ),
        NOW,
    )
    assert assigned.loc["c", "segment"] == "regular"


def test_summary_shares_and_average_monetary_per_segment():
    assigned = segments.assign(
        *frames(
            [("a", days_ago(900)), ("b", days_ago(900)), ("c", days_ago(1))],
            won=[("a", days_ago(5), 2_000_000), ("b", days_ago(5), 1_000)],
        ),
        NOW,
    )
    rows = {row["segment"]: row for row in segments.summary(assigned)}
    assert [row["segment"] for row in segments.summary(assigned)] == list(segments.SEGMENTS)
    assert (rows["high_value"]["customers"], rows["high_value"]["share"]) == (1, 1 / 3)
    assert rows["high_value"]["avg_monetary_cents"] == 2_000_000
    assert rows["potential"]["avg_monetary_cents"] == 0
    assert (rows["inactive"]["customers"], rows["inactive"]["avg_monetary_cents"]) == (0, None)


def test_merge_chains_resolve_to_the_last_survivor():
    assert segments.survivors({"a": "b", "b": "c", "x": "y"}) == {"a": "c", "b": "c", "x": "y"}
    assert segments.survivors({"a": "b", "b": "a"})["a"] in ("a", "b")  # a cycle ends


def test_a_moment_in_any_year_from_1_to_9999_is_assigned():
    """Reports take `as_of` anywhere in ISO 8601's range; pandas' default nanoseconds
    reach only from 1677 to 2262."""
    for now in (
        datetime(1, 1, 1, tzinfo=UTC),
        datetime(823, 11, 20, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, tzinfo=UTC),
    ):
        assert segments.assign(*frames([]), now).empty
        assigned = segments.assign(*frames([("ada", now)], won=[("ada", now, 100)]), now)
        assert assigned.loc["ada", "recency_days"] == 0
        assert assigned.loc["ada", "segment"] == segments.REGULAR
        assert segments.engagement_since(now) <= now
