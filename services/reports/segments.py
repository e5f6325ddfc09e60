"""Customer segments: RFM over won deals plus engagement over interactions. Pure rules.

For each active customer at a moment `now`:
- recency_days: days since its last won deal closed (none without one);
- frequency: how many deals it has won;
- monetary: the sum of their amounts (at face value, whatever the currency);
- engagement: interactions with it in the last ENGAGEMENT_DAYS days.

Tiers, the first rule that holds:
- high_value: monetary >= HIGH_VALUE_MONETARY and recency_days <= HIGH_VALUE_RECENCY_DAYS;
- at_risk: it has won deals, the last more than AT_RISK_RECENCY_DAYS ago, and
  no engagement;
- regular: it has won deals;
- potential: no won deal yet, but engaged, or new (created in the last
  NEW_CUSTOMER_DAYS days);
- inactive: everything else.
"""

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

HIGH_VALUE = "high_value"
REGULAR = "regular"
POTENTIAL = "potential"
AT_RISK = "at_risk"
INACTIVE = "inactive"
SEGMENTS = (HIGH_VALUE, REGULAR, POTENTIAL, AT_RISK, INACTIVE)

HIGH_VALUE_MONETARY = 10_000
HIGH_VALUE_RECENCY_DAYS = 365
AT_RISK_RECENCY_DAYS = 180
ENGAGEMENT_DAYS = 90
NEW_CUSTOMER_DAYS = 90


def engagement_since(now):
    try:
        return now - timedelta(days=ENGAGEMENT_DAYS)
    except OverflowError:  # a moment in the first days of year 1
        return datetime.min.replace(tzinfo=now.tzinfo)


def assign(customers, won, engaged, now):
    """Each customer's metrics and segment at `now`.

    `customers`: DataFrame [customer_id, created_at]; `won`: [customer_id,
    closed_at, amount_cents], one row per won deal; `engaged`: [customer_id,
    interactions] counted over the engagement window. Customer ids in `won`
    and `engaged` are already those of survivors. Answers a DataFrame indexed
    by customer_id with recency_days, frequency, monetary_cents, engagement,
    segment.
    """
    frame = customers.set_index("customer_id")[["created_at"]].copy()
    if len(won):
        by_customer = won.groupby("customer_id").agg(
            frequency=("amount_cents", "size"),
            monetary_cents=("amount_cents", "sum"),
            last_won=("closed_at", "max"),
        )
        frame = frame.join(by_customer, how="left")
    else:
        frame["frequency"], frame["monetary_cents"], frame["last_won"] = 0, 0, pd.NaT
    frame = frame.join(engaged.set_index("customer_id")[["interactions"]], how="left")
    frame["frequency"] = frame["frequency"].fillna(0).astype("int64")
    frame["monetary_cents"] = frame["monetary_cents"].fillna(0).astype("int64")
    frame["engagement"] = frame["interactions"].fillna(0).astype("int64")
    # In microseconds, not pandas' nanoseconds: `now` may be any moment of years 1 to
    # 9999 (a report as of then), and nanoseconds reach only from 1677 to 2262.
    now = pd.Timestamp(now).as_unit("us")
    last_won = pd.to_datetime(frame["last_won"], utc=True).dt.as_unit("us")
    frame["recency_days"] = (now - last_won).dt.days
    created = pd.to_datetime(frame["created_at"], utc=True).dt.as_unit("us")
    buyer = frame["frequency"] > 0
    recency = frame["recency_days"]
    frame["segment"] = np.select(
        [
            buyer
            & (frame["monetary_cents"] >= HIGH_VALUE_MONETARY * 100)
            & (recency <= HIGH_VALUE_RECENCY_DAYS),
            buyer & (recency > AT_RISK_RECENCY_DAYS) & (frame["engagement"] == 0),
            buyer,
            (frame["engagement"] > 0) | (created >= now - pd.Timedelta(days=NEW_CUSTOMER_DAYS)),
        ],
        [HIGH_VALUE, AT_RISK, REGULAR, POTENTIAL],
        default=INACTIVE,
    )
    return frame[["recency_days", "frequency", "monetary_cents", "engagement", "segment"]]


def survivors(merged_into):
    """{customer_id: final survivor} following chains of merges (A into B, B into C)."""
    final = {}
    for customer_id in merged_into:
        seen, current = {customer_id}, merged_into[customer_id]
        while current in merged_into and current not in seen:
            seen.add(current)
            current = merged_into[current]
        final[customer_id] = current
    return final


def summary(assigned):
    """Per segment: customers, share, avg_monetary (cents, float), in SEGMENTS order."""
    total = len(assigned)
    grouped = assigned.groupby("segment")["monetary_cents"].agg(["size", "mean"])
    rows = []
    for segment in SEGMENTS:
        count = int(grouped.loc[segment, "size"]) if segment in grouped.index else 0
        mean = float(grouped.loc[segment, "mean"]) if count else None
        rows.append(
            {
                "segment": segment,
                "customers": count,
                "share": count / total if total else None,
                "avg_monetary_cents": mean,
            }
        )
    return rows
