"""How events change the views, and how views read. Functions of a session."""

from datetime import datetime

from sqlalchemy import func, select

from services.reports.models import CustomerFact, ViewState

CUSTOMERS_VIEW = "customers"


def apply_customer_created(session, envelope):
    data = envelope["data"]
    fact = session.get(CustomerFact, data["customer_id"])
    if fact is None:
        session.add(
            CustomerFact(
                customer_id=data["customer_id"],
                status=data["status"],
                owner=data["owner"],
                created_at=data["created_at"],
                sequence=envelope["sequence"],
            )
        )
    # A fact already there came from this or a later event of the customer:
    # creation is the first in its history, so there is nothing to change.
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
