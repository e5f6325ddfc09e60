"""Segments in the reports database: facts in, segments and segment_changed out.

Segments depend on time (recency, the engagement window), so they are not
moved event by event: the service recomputes them all with pandas (rules
in segments.py) when events changed their inputs, and at least every
RECOMPUTE_EVERY, in one transaction that also writes a `segment_changed`
event to the outbox for every customer that moved, and the per-segment sums
(`SegmentTotals`) the live report reads. Answers `as_of` a past moment are
computed the same way from the facts as they stood then.
"""

from datetime import timedelta
from decimal import Decimal

import pandas as pd
from sqlalchemy import and_, case, delete, func, insert, or_, select, update

from crm_common.db import insert_new, lock_for
from crm_common.errors import ValidationFailed
from services.reports import segments
from services.reports.models import (
    CustomerFact,
    CustomerSegment,
    DealFact,
    DealMove,
    InteractionFact,
    SegmentTotals,
)

SEGMENTS_VIEW = "segments"
# Inputs of the segments: when one of these views moved on, segments are due.
INPUT_VIEWS = ("customers", "sales", "interactions")
RECOMPUTE_EVERY = timedelta(hours=1)


def apply_interactions_logged(session, envelopes):
    """Interactions logged: each kept once, in one statement."""
    insert_new(
        session,
        InteractionFact,
        ("interaction_id",),
        [
            {
                "interaction_id": data["interaction_id"],
                "customer_id": data["customer_id"],
                "occurred_at": data["occurred_at"],
                "channel": data["channel"],
            }
            for data in (envelope["data"] for envelope in envelopes)
        ],
    )


def _frame(session, query, columns):
    # Plain tuples: given the result's rows, pandas asks each for attributes it lacks,
    # and a miss on a row is slow (a second and more over 100,000 customers).
    return pd.DataFrame([tuple(row) for row in session.execute(query)], columns=columns)


def inputs(session, now, as_of=None):
    """(customers, won, engaged) frames of segments.assign, at `as_of` if given."""
    moment = as_of or now
    customer_rows = _frame(
        session,
        select(CustomerFact.customer_id, CustomerFact.created_at, CustomerFact.merged_into).where(
            CustomerFact.created_at.is_not(None), CustomerFact.created_at <= moment
        ),
        ["customer_id", "created_at", "merged_into"],
    )
    merged = customer_rows.dropna(subset=["merged_into"])
    final = segments.survivors(dict(zip(merged["customer_id"], merged["merged_into"], strict=True)))
    customers = customer_rows[customer_rows["merged_into"].isna()][["customer_id", "created_at"]]
    if as_of is None:
        won = _frame(
            session,
            select(DealFact.customer_id, DealFact.closed_at, DealFact.amount_cents).where(
                DealFact.status == "won"
            ),
            ["customer_id", "closed_at", "amount_cents"],
        )
    else:
        won = _won_at(session, as_of)
    engaged = _frame(
        session,
        select(InteractionFact.customer_id, func.count())
        .where(
            InteractionFact.occurred_at >= segments.engagement_since(moment),
            InteractionFact.occurred_at <= moment,
        )
        .group_by(InteractionFact.customer_id),
        ["customer_id", "interactions"],
    )
    for frame in (won, engaged):
        frame["customer_id"] = frame["customer_id"].map(lambda cid: final.get(cid, cid))
    engaged = engaged.groupby("customer_id", as_index=False)["interactions"].sum()
    return customers, won, engaged


def _won_at(session, as_of):
    """Deals won as they stood at `as_of`: each deal's last move by then, if it says won,
    closed at its latest win by then. Picked in the database: only the won deals leave
    it, not every move. A deal whose moves never said won by then cannot be won then, so
    only the other deals' moves are looked at (not every deal's)."""
    won = DealMove.kind == "won"
    candidates = (
        select(DealMove.deal_id, func.max(case((won, DealMove.at))).label("closed_at"))
        .where(DealMove.at <= as_of, or_(DealMove.status == "won", won))
        .group_by(DealMove.deal_id)
        .cte("candidates")  # read twice below, computed once
    )
    last = (
        select(DealMove.deal_id, func.max(DealMove.sequence).label("sequence"))
        .join(candidates, candidates.c.deal_id == DealMove.deal_id)
        .where(DealMove.at <= as_of)
        .group_by(DealMove.deal_id)
        .subquery()
    )
    return _frame(
        session,
        select(DealMove.customer_id, candidates.c.closed_at, DealMove.amount_cents)
        .join(last, and_(last.c.deal_id == DealMove.deal_id, last.c.sequence == DealMove.sequence))
        .join(candidates, candidates.c.deal_id == DealMove.deal_id)
        .where(DealMove.status == "won")
        .order_by(DealMove.deal_id),
        ["customer_id", "closed_at", "amount_cents"],
    )


def recompute(session, now):
    """Assign every customer's segment at `now`; answers the segment_changed events to emit.

    The caller adds the events to the outbox in this same transaction and commits.
    """
    lock_for(session, "reports:segments")
    assigned = segments.assign(*inputs(session, now), now)
    stored = {
        row.customer_id: row
        for row in session.execute(
            select(CustomerSegment.customer_id, CustomerSegment.sequence, *_METRIC_COLUMNS)
        )
    }
    events, inserts, updates = [], [], []
    for customer_id, metrics in zip(
        assigned.index, assigned[list(METRICS)].itertuples(index=False, name=None), strict=True
    ):
        values = _values(dict(zip(METRICS, metrics, strict=True)))
        row = stored.pop(customer_id, None)
        if row is None:
            inserts.append({"customer_id": customer_id, "sequence": 1, "changed_at": now, **values})
            events.append(_moved(customer_id, 1, None, values["segment"]))
        elif _differs(row, values):
            change = {"customer_id": customer_id, **values}
            if row.segment != values["segment"]:
                change.update(sequence=row.sequence + 1, changed_at=now)
                events.append(_moved(customer_id, row.sequence + 1, row.segment, values["segment"]))
            updates.append(change)
    # Customers no longer active (merged away) leave their segment.
    for customer_id, row in stored.items():
        events.append(_moved(customer_id, row.sequence + 1, row.segment, None))
    if stored:
        session.execute(
            delete(CustomerSegment).where(CustomerSegment.customer_id.in_(list(stored)))
        )
    if inserts:
        session.execute(insert(CustomerSegment), inserts)
    if updates:
        session.execute(update(CustomerSegment), updates)
    store_totals(session, assigned)
    session.flush()
    return events


def store_totals(session, assigned):
    """Replace the per-segment sums with those of the segments just `assigned`."""
    by_segment = assigned.groupby("segment")["monetary_cents"].agg(["count", "sum"])
    session.execute(delete(SegmentTotals))
    if len(by_segment):
        session.execute(
            insert(SegmentTotals),
            [
                {"segment": segment, "customers": int(count), "monetary_cents": int(total)}
                for segment, count, total in by_segment.itertuples(name=None)
            ],
        )


METRICS = ("segment", "recency_days", "frequency", "monetary_cents", "engagement")
_METRIC_COLUMNS = [getattr(CustomerSegment, name) for name in METRICS]


def _values(metrics):
    recency = metrics["recency_days"]
    return {
        "segment": metrics["segment"],
        "recency_days": None if pd.isna(recency) else int(recency),
        "frequency": int(metrics["frequency"]),
        "monetary_cents": int(metrics["monetary_cents"]),
        "engagement": int(metrics["engagement"]),
    }


def _differs(row, values):
    return any(getattr(row, field) != value for field, value in values.items())


def _moved(customer_id, sequence, from_segment, to_segment):
    return (
        "segment_changed",
        customer_id,
        sequence,
        {"customer_id": customer_id, "from_segment": from_segment, "to_segment": to_segment},
    )


def segments_report(session):
    """The segments as last computed, from their sums (a row per segment)."""
    return _report(
        {
            row.segment: (row.customers, Decimal(row.monetary_cents) / row.customers)
            for row in session.scalars(select(SegmentTotals))
        }
    )


def segments_as_of(session, now, as_of):
    assigned = segments.assign(*inputs(session, now, as_of), as_of)
    return {"items": [_shown(row) for row in segments.summary(assigned)]}


def _report(by_segment):
    total = sum(count for count, _ in by_segment.values())
    return {
        "items": [
            _shown(
                {
                    "segment": segment,
                    "customers": by_segment.get(segment, (0, None))[0],
                    "share": by_segment[segment][0] / total
                    if segment in by_segment
                    else (0.0 if total else None),
                    "avg_monetary_cents": by_segment.get(segment, (0, None))[1],
                }
            )
            for segment in segments.SEGMENTS
        ]
    }


def _shown(row):
    mean = row.pop("avg_monetary_cents")
    return {
        **row,
        "avg_monetary": f"{mean / 100:.2f}" if mean is not None else None,
    }


def members(session, segment, limit, after=None):
    """Customers in `segment` by id, `limit` at a time after the id `after`."""
    if segment not in segments.SEGMENTS:
        raise ValidationFailed(
            f"No segment {segment!r}; the segments are {', '.join(segments.SEGMENTS)}.",
            {"segment": ["Unknown segment."]},
        )
    query = select(CustomerSegment).where(CustomerSegment.segment == segment)
    if after:
        query = query.where(CustomerSegment.customer_id > after)
    rows = session.scalars(query.order_by(CustomerSegment.customer_id).limit(limit + 1)).all()
    page = rows[:limit]
    return {
        "items": [
            {
                "customer_id": row.customer_id,
                "segment": row.segment,
                "recency_days": row.recency_days,
                "frequency": row.frequency,
                "monetary": f"{row.monetary_cents / 100:.2f}",
                "engagement": row.engagement,
                "since": row.changed_at.isoformat(),
            }
            for row in page
        ],
        "next_cursor": page[-1].customer_id if len(rows) > limit else None,
    }
