"""How events change the views, and how views read. Functions of a session."""

from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from functools import partial

from sqlalchemy import and_, func, or_, select

from services.reports import sales
from services.reports.fact_batch import FactBatch, apply_in_batch
from services.reports.models import (
    CustomerFact,
    DealFact,
    SalesForecast,
    SalesPerformance,
    StageFact,
    ViewState,
)
from services.reports.totals import add_many

CUSTOMERS_VIEW = "customers"
SALES_VIEW = "sales"
SALES_TABLES = {sales.PERFORMANCE: SalesPerformance, sales.FORECAST: SalesForecast}
TOTALS_KEY = ("owner", "month", "currency")
TRACKED = ("status", "owner")


def apply_customer_events(session, envelopes):
    """Customer events (created, updated, merged), each as it would apply alone, in order."""
    keys = set()
    for envelope in envelopes:
        data = envelope["data"]
        keys.update([data.get("customer_id", data.get("survivor_id")), *data.get("merged_ids", ())])
    apply_in_batch(session, CustomerFact, keys, apply_customer_event, envelopes)


def apply_customer_event(facts, envelope):
    """What one customer event changes in `facts` (a FactBatch of customer facts)."""
    CUSTOMER_EFFECTS[envelope["event_type"]](facts, envelope["data"], envelope["sequence"])


def fact_of(facts, customer_id, sequence):
    """The customer's fact, created empty if this is the first event seen of it."""
    fact = facts.get(
        customer_id,
        lambda: CustomerFact(
            customer_id=customer_id, status_sequence=0, owner_sequence=0, sequence=0
        ),
    )
    fact.sequence = max(fact.sequence, sequence)
    return fact


def set_newer(fact, values, sequence):
    """Set each tracked field unless a later event already set it."""
    for field in TRACKED:
        if field in values and getattr(fact, f"{field}_sequence") < sequence:
            setattr(fact, field, values[field])
            setattr(fact, f"{field}_sequence", sequence)


def _customer_created(facts, data, sequence):
    fact = fact_of(facts, data["customer_id"], sequence)
    fact.created_at = data["created_at"]
    set_newer(fact, data, sequence)


def _customer_updated(facts, data, sequence):
    fact = fact_of(facts, data["customer_id"], sequence)
    set_newer(fact, {field: new for field, (_, new) in data["changes"].items()}, sequence)


def _customer_merged(facts, data, sequence):
    survivor = fact_of(facts, data["survivor_id"], sequence)
    set_newer(survivor, {field: new for field, (_, new) in data["changes"].items()}, sequence)
    for merged_id in data["merged_ids"]:
        # Merging is final: whatever else arrives of a merged customer, it stays merged.
        fact_of(facts, merged_id, 0).merged_into = data["survivor_id"]


CUSTOMER_EFFECTS = {
    "customer_created": _customer_created,
    "customer_updated": _customer_updated,
    "customer_merged": _customer_merged,
}


def apply_deal_event(session, envelope):
    """Any deal event: keep the deal's newest state and move the sales totals with it."""
    apply_deal_events(session, [envelope])


def apply_deal_events(session, envelopes):
    """Deal events: keep each deal's newest state and move the sales totals with it.

    A handful of statements however many events: the deals' facts are read at
    once (new ones inserted together), each deal goes straight to the state of
    its newest event (the totals move by the difference, as they would event by
    event), and the totals move in one upsert.
    """
    newest = {}
    for envelope in envelopes:
        deal_id = envelope["data"]["deal_id"]
        if deal_id not in newest or envelope["sequence"] > newest[deal_id]["sequence"]:
            newest[deal_id] = envelope
    facts = FactBatch(session, DealFact, newest)
    probabilities = stage_probabilities(
        session, {envelope["data"]["deal"]["stage_id"] for envelope in newest.values()}
    )
    moves = []
    for deal_id, envelope in sorted(newest.items()):
        fact = facts.find(deal_id)
        if fact is not None and fact.sequence >= envelope["sequence"]:
            continue  # older events arriving late: the newer state stands
        old = sales_state(fact) if fact is not None else None
        fact = facts.get(deal_id, partial(DealFact, deal_id=deal_id))
        deal = envelope["data"]["deal"]
        fact.sequence = envelope["sequence"]
        fact.customer_id = deal["customer_id"]
        fact.pipeline_id = deal["pipeline_id"]
        fact.stage_id = deal["stage_id"]
        fact.status = deal["status"]
        fact.owner = deal["owner"]
        fact.currency = deal["currency"]
        fact.amount_cents = sales.to_cents(deal["amount"])
        probability_bp = probabilities.get(deal["stage_id"])
        if probability_bp is None:  # its pipeline's events have not arrived yet
            probability_bp = sales.to_basis_points(deal["probability"])
        fact.probability_bp = probability_bp
        fact.expected_close_date = deal["expected_close_date"]
        fact.closed_at = deal["closed_at"]
        moves += sales.moves(old, sales_state(fact))
    facts.insert_created()
    move_totals(session, moves)


def move_totals(session, moves):
    """Add the moves to their totals rows: summed per row, one upsert per table."""
    summed = {view: defaultdict(lambda: defaultdict(int)) for view in SALES_TABLES}
    for view, key, deltas in moves:
        for column, delta in deltas.items():
            summed[view][key][column] += delta
    for view, rows in sorted(summed.items()):
        moved = {key: deltas for key, deltas in rows.items() if any(deltas.values())}
        add_many(session, SALES_TABLES[view], TOTALS_KEY, moved)


def stage_probabilities(session, stage_ids):
    """{stage_id: probability (basis points)} of those of `stage_ids` a pipeline event set.

    Pipeline events wait for the deal events under way (funnel_view.deal_locks),
    then weigh again the deals whose stage probability changed.
    """
    return dict(
        session.execute(
            select(StageFact.stage_id, StageFact.probability_bp).where(
                StageFact.stage_id.in_(sorted(stage_ids)), StageFact.probability_bp.is_not(None)
            )
        ).all()
    )


def reweigh_open_deals(session, pipeline_id):
    """Open deals of the pipeline weighed by an older probability of their stage: the
    stage's probability now, and the forecast moved with it."""
    stale = session.scalars(
        select(DealFact)
        .join(StageFact, StageFact.stage_id == DealFact.stage_id)
        .where(
            DealFact.pipeline_id == pipeline_id,
            DealFact.status == "open",
            StageFact.probability_bp.is_not(None),
            StageFact.probability_bp != DealFact.probability_bp,
        )
        .order_by(DealFact.deal_id)
        .with_for_update(of=DealFact)
    ).all()
    probabilities = stage_probabilities(session, {fact.stage_id for fact in stale})
    moves = []
    for fact in stale:
        old = sales_state(fact)
        fact.probability_bp = probabilities[fact.stage_id]
        moves += sales.moves(old, sales_state(fact))
    move_totals(session, moves)
    return len(stale)


def sales_state(fact):
    return sales.DealState(
        status=fact.status,
        owner=fact.owner,
        currency=fact.currency,
        amount_cents=fact.amount_cents,
        probability=Decimal(fact.probability_bp) / 10000,
        expected_close_date=fact.expected_close_date,
        closed_at=fact.closed_at,
    )


def sales_report(session, owner=None, window=sales.Window(None, None, True)):
    """Performance per owner and month closed; the weighted forecast per close month and owner.

    `window` (sales.Window) picks the months; `owner` picks one owner.
    """
    performance = _totals(
        session,
        (SalesPerformance.won, SalesPerformance.lost, SalesPerformance.won_cents),
        SalesPerformance.won + SalesPerformance.lost > 0,
        owner,
        window,
    )
    forecast = _totals(
        session,
        (SalesForecast.deals, SalesForecast.amount_cents, SalesForecast.weighted_cents),
        SalesForecast.deals > 0,
        owner,
        window,
    )
    return {
        "from": window.first,
        "to": window.last,
        "performance": _per_owner_and_month(performance),
        "forecast": [
            {
                "month": month,
                "owner": owner or None,
                "currency": currency,
                "deals": deals,
                "amount": sales.from_cents(amount_cents),
                "weighted_amount": sales.from_cents(weighted_cents),
            }
            for month, owner, currency, deals, amount_cents, weighted_cents in forecast
        ],
    }


def _per_owner_and_month(rows):
    """Performance rows (one per currency) as one per owner and month: counts and win
    rate over every currency, the won amount per currency (never added across them)."""
    merged = {}
    for month, owner, currency, won, lost, won_cents in rows:
        entry = merged.get((month, owner))
        if entry is None:
            entry = merged[month, owner] = {
                "owner": owner or None,
                "month": month,
                "won": 0,
                "lost": 0,
                "won_amount": {},
            }
        entry["won"] += won
        entry["lost"] += lost
        if won:
            entry["won_amount"][currency] = sales.from_cents(won_cents)
    for entry in merged.values():
        entry["win_rate"] = sales.win_rate(entry["won"], entry["lost"])
    return list(merged.values())


def _totals(session, counts, alive, owner, window):
    """(month, owner, currency, *counts) of the rows of a totals table that count
    something, filtered, in that order (plain rows, not ORM objects: an answer reads
    thousands of them)."""
    model = counts[0].class_
    query = select(model.month, model.owner, model.currency, *counts).where(alive)
    if owner is not None:
        query = query.where(model.owner == owner)
    months = []
    if window.first:
        months.append(model.month >= window.first)
    if window.last:
        months.append(model.month <= window.last)
    if months:
        # `unscheduled` sorts after every YYYY-MM: the range alone would let it in or not.
        in_range = and_(model.month != sales.UNSCHEDULED, *months)
        unscheduled = model.month == sales.UNSCHEDULED
        query = query.where(or_(in_range, unscheduled) if window.unscheduled else in_range)
    elif not window.unscheduled:
        query = query.where(model.month != sales.UNSCHEDULED)
    return session.execute(query.order_by(model.month, model.owner, model.currency)).all()


def touch_all(session, names, occurred_at, count=1):
    """touch() each view named, in one order for every transaction (rows locked in order)."""
    for view in sorted(names):
        touch(session, view, occurred_at, count)


def touch(session, view, occurred_at, count=1):
    """Record that `view` now reflects `count` more events, up to `occurred_at` (never
    moves back)."""
    state = session.get(ViewState, view, with_for_update=True)
    if state is None:
        session.add(ViewState(view=view, as_of=occurred_at, events_applied=count))
        return
    state.events_applied += count
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


def events_applied(session, names):
    """{view: events applied} of the views named: a cheap watermark of their inputs."""
    return dict(
        session.execute(
            select(ViewState.view, ViewState.events_applied).where(ViewState.view.in_(names))
        ).all()
    )


def freshness(state, now):
    """`as_of` and `lag_seconds` of a view in `state`; both None before its first event."""
    if state is None:
        return {"as_of": None, "lag_seconds": None}
    as_of: datetime = state.as_of
    return {
        "as_of": as_of.isoformat(timespec="microseconds"),
        "lag_seconds": round(max(0.0, (now - as_of).total_seconds()), 3),
    }


def freshness_at(state, as_of):
    """Freshness of a time-travel answer: `as_of` is the moment asked for; `lag_seconds`
    how far the view's newest event falls short of it (0 when the view has caught up)."""
    newest = state.as_of if state is not None else None
    lag = max(0.0, (as_of - newest).total_seconds()) if newest is not None else None
    return {
        "as_of": as_of.isoformat(timespec="microseconds"),
        "lag_seconds": round(lag, 3) if lag is not None else None,
        "time_travel": True,
    }
