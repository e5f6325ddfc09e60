"""Queries of the interactions service: lists, the timeline, the SLA clock, merges, erasure."""

from sqlalchemy import and_, or_, select, update

from services.interactions import domain
from services.interactions.models import (
    Feedback,
    Interaction,
    OutboxEvent,
    Satisfaction,
    Ticket,
    TicketStep,
)

# Timeline kinds, each with its model and the time it is placed at.
TIMELINE = {
    "feedback": (Feedback, Feedback.received_at),
    "interaction": (Interaction, Interaction.occurred_at),
    "satisfaction": (Satisfaction, Satisfaction.recorded_at),
    "ticket": (Ticket, Ticket.opened_at),
}
CUSTOMER_RECORDS = (Interaction, Feedback, Ticket, Satisfaction)
# Per breach kind: when it was due, the step that stops the clock, where the breach is kept.
SLA_CLOCKS = {
    "first_response": (Ticket.response_due_at, Ticket.first_responded_at, "response_breached_at"),
    "resolution": (Ticket.resolution_due_at, Ticket.resolved_at, "resolution_breached_at"),
}


def before(at_column, id_column, at, item_id):
    """Rows after (at, id) in a newest-first order."""
    return or_(at_column < at, and_(at_column == at, id_column < item_id))


def newest_first(session, query, at_column, id_column, limit, after=None):
    """One page of `query`, newest first: (rows, (at, id) of the last row if more follow)."""
    if after is not None:
        query = query.where(before(at_column, id_column, *after))
    rows = session.scalars(
        query.order_by(at_column.desc(), id_column.desc()).limit(limit + 1)
    ).all()
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], (getattr(last, at_column.key), last.id)


def interactions(session, params, after):
    """Interactions newest first; filters customer_id, deal_id, channel, owner."""
    return filtered(session, Interaction, Interaction.occurred_at, params, after)


def tickets(session, params, after):
    """Tickets newest opened first; filters customer_id, status, assignee, priority."""
    return filtered(session, Ticket, Ticket.opened_at, params, after)


def filtered(session, model, at_column, params, after):
    """A page of `model` rows whose columns equal the filters given in `params`."""
    query = select(model)
    for field, value in params.items():
        if field not in ("limit", "cursor") and value is not None:
            query = query.where(getattr(model, field) == value)
    return newest_first(session, query, at_column, model.id, params["limit"], after)


def timeline(session, customer_id, limit, after=None):
    """A customer's records of every kind, newest first, ordered by (at, kind, id) descending.

    Returns ([(kind, at, row)], (at, kind, id) of the last one if more follow).
    """
    found = []
    for kind, (model, at_column) in TIMELINE.items():
        query = select(model).where(model.customer_id == customer_id)
        if after is not None:
            at, after_kind, item_id = after
            if kind < after_kind:
                query = query.where(at_column <= at)
            elif kind == after_kind:
                query = query.where(before(at_column, model.id, at, item_id))
            else:
                query = query.where(at_column < at)
        rows = session.scalars(
            query.order_by(at_column.desc(), model.id.desc()).limit(limit + 1)
        ).all()
        found.extend((kind, getattr(row, at_column.key), row) for row in rows)
    found.sort(key=lambda item: (item[1], item[0], item[2].id), reverse=True)
    if len(found) <= limit:
        return found, None
    kind, at, row = found[limit - 1]
    return found[:limit], (at, kind, row.id)


# --- the SLA clock ----------------------------------------------------------------------


def overdue(session, kind, now, limit):
    """Ids of tickets whose `kind` target passed at `now` with no step and no breach recorded."""
    due, done, breached = SLA_CLOCKS[kind]
    breached = getattr(Ticket, breached)
    return session.scalars(
        select(Ticket.id)
        .where(done.is_(None), breached.is_(None), due < now)
        .order_by(due)
        .limit(limit)
    ).all()


def claim_breach(session, ticket_id, kind, now):
    """Record the breach on the ticket unless someone did already; the ticket, or None.

    One conditional UPDATE: of two timers (or a timer and a late step)
    racing on one breach, exactly one changes the row; the other finds the
    breach recorded. The ticket's version moves on for the event.
    """
    due, done, breached = SLA_CLOCKS[kind]
    column = getattr(Ticket, breached)
    return session.scalars(
        update(Ticket)
        .where(Ticket.id == ticket_id, column.is_(None), done.is_(None), due < now)
        .values({column: now, Ticket.version: Ticket.version + 1})
        .returning(Ticket),
        execution_options={"synchronize_session": False},
    ).one_or_none()


# --- customers merged and erased --------------------------------------------------------


def reparent(session, from_ids, to_id):
    """Move every record of the merged customers to the survivor."""
    for model in CUSTOMER_RECORDS:
        session.execute(
            update(model)
            .where(model.customer_id.in_(from_ids))
            .values(customer_id=to_id)
            .execution_options(synchronize_session=False)
        )


def scrub(session, customer_id):
    """Remove the free text of a customer's records, their history and their events."""
    ticket_ids = select(Ticket.id).where(Ticket.customer_id == customer_id)
    for statement in (
        update(Interaction)
        .where(Interaction.customer_id == customer_id)
        .values(subject=None, body=None, outcome=None),
        update(Feedback).where(Feedback.customer_id == customer_id).values(text=None),
        update(Ticket)
        .where(Ticket.customer_id == customer_id)
        .values(subject=None, description=None),
        update(TicketStep).where(TicketStep.ticket_id.in_(ticket_ids)).values(note=None),
        update(Satisfaction).where(Satisfaction.customer_id == customer_id).values(comment=None),
    ):
        session.execute(statement.execution_options(synchronize_session=False))
    aggregates = [
        *session.scalars(ticket_ids),
        *session.scalars(select(Interaction.id).where(Interaction.customer_id == customer_id)),
        *session.scalars(select(Feedback.id).where(Feedback.customer_id == customer_id)),
    ]
    for start in range(0, len(aggregates), 500):
        for row in session.scalars(
            select(OutboxEvent).where(OutboxEvent.aggregate_id.in_(aggregates[start : start + 500]))
        ):
            row.body = domain.scrubbed_event(row.body)
