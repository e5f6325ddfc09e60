"""How events change the views, and how views read. Functions of a session."""

from datetime import datetime

from sqlalchemy import func, select

from services.reports.models import CustomerFact, ViewState

CUSTOMERS_VIEW = "customers"
TRACKED = ("status", "owner")


def fact_of(session, customer_id, sequence):
    """The customer's fact, created empty if this is the first event seen of it."""
    fact = session.get(CustomerFact, customer_id, with_for_update=True)
    if fact is None:
        fact = CustomerFact(
            customer_id=customer_id, status_sequence=0, owner_sequence=0, sequence=0
        )
        session.add(fact)
    fact.sequence = max(fact.sequence, sequence)
    return fact


def set_newer(fact, values, sequence):
    """Set each tracked field unless a later event already set it."""
    for field in TRACKED:
        if field in values and getattr(fact, f"{field}_sequence") < sequence:
            setattr(fact, field, values[field])
            setattr(fact, f"{field}_sequence", sequence)


def apply_customer_created(session, envelope):
    data = envelope["data"]
    fact = fact_of(session, data["customer_id"], envelope["sequence"])
    fact.created_at = data["created_at"]
    set_newer(fact, data, envelope["sequence"])
    touch(session, CUSTOMERS_VIEW, envelope["occurred_at"])


def apply_customer_updated(session, envelope):
    data = envelope["data"]
    fact = fact_of(session, data["customer_id"], envelope["sequence"])
    set_newer(
        fact, {field: new for field, (_, new) in data["changes"].items()}, envelope["sequence"]
    )
    touch(session, CUSTOMERS_VIEW, envelope["occurred_at"])


def apply_customer_merged(session, envelope):
    data = envelope["data"]
    survivor = fact_of(session, data["survivor_id"], envelope["sequence"])
    set_newer(
        survivor, {field: new for field, (_, new) in data["changes"].items()}, envelope["sequence"]
    )
    for merged_id in data["merged_ids"]:
        # Merging is final: whatever else arrives of a merged customer, it stays merged.
        fact_of(session, merged_id, 0).merged_into = data["survivor_id"]
    touch(session, CUSTOMERS_VIEW, envelope["occurred_at"])


def touch(session, view, occurred_at):
    """Record that `view` now reflects events up to `occurred_at` (never moves back)."""
    state = session.get(ViewState, view, with_for_update=True)
    if state is None:
        session.add(ViewState(view=view, as_of=occurred_at, events_applied=1))
        return
    state.events_applied += 1
    if occurred_at > state.as_of:
        state.as_of = occurred_at


def customers_by_status_owner(session):
    rows = session.execute(
        select(CustomerFact.status, CustomerFact.owner, func.count())
        # Counted once its creation arrived, whatever came before it.
        .where(CustomerFact.created_at.is_not(None), CustomerFact.merged_into.is_(None))
        .group_by(CustomerFact.status, CustomerFact.owner)
        .order_by(CustomerFact.status, CustomerFact.owner.asc().nulls_first())
    ).all()
    items = [
        {"status": status, "owner": owner, "customers": count} for status, owner, count in rows
    ]
    return {"items": items, "total": sum(item["customers"] for item in items)}


def freshness(session, view, now):
    """`as_of` and `lag_seconds` of a view; both None before its first event."""
    state = session.get(ViewState, view)
    if state is None:
        return {"as_of": None, "lag_seconds": None}
    as_of: datetime = state.as_of
    return {
        "as_of": as_of.isoformat(timespec="microseconds"),
        "lag_seconds": round(max(0.0, (now - as_of).total_seconds()), 3),
    }
