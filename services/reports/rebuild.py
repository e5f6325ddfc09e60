"""Rebuilding every view from the producers' event logs, while live events keep flowing.

A rebuild is a row of `rebuilds`. Asking for one stores it `requested`; the
first reports instance whose rebuild timer finds it claims it, empties the
views and the record of applied events in one transaction, and replays each
producer's log (`events_since`) a page at a time. Each page is applied in
one transaction together with the rebuild's progress (its cursors), so an
instance that dies mid-rebuild leaves a consistent state that another
instance takes over once the claim's heartbeat is older than LEASE.

Live events keep arriving meanwhile and go through the inbox as always: the
views do not depend on the order events arrive in, and an event applied
live is skipped by the replay (and the other way round) by its event_id.
One step is left to the end: the replay stores each deal event's move but
does not count its deal in the funnel; once every log is replayed, every deal
is counted at once from its moves (deal_counts.count_every_deal, in SQL on
PostgreSQL), the deals' live events waiting meanwhile. Live events that
counted their deals during the replay are counted again with the rest. So
the replay ends with the views the live stream would have built, and the
segments are recomputed from them. While it runs, answers carry
`rebuilding: true`: their numbers are still growing back.

Customer segments (the last published segment of each customer, numbered
for `segment_changed`) and the views' freshness are kept: they are what
subscribers and callers already saw, and the recompute at the end brings
the segments up to date without re-announcing customers that did not move.
"""

import json
import logging
import uuid
from datetime import timedelta

from sqlalchemy import delete, literal, select, text, true

from crm_common.db import is_postgres
from crm_common.envelope import utcnow
from services.reports.models import (
    AppliedEvent,
    CustomerFact,
    DealFact,
    DealMove,
    DealStageCounts,
    FunnelOwnerTotals,
    FunnelSnapshot,
    FunnelSnapshotTotals,
    FunnelTotals,
    InteractionFact,
    PipelineFact,
    Rebuild,
    SalesForecast,
    SalesPerformance,
    SatisfactionFact,
    StageFact,
    TicketFact,
    ViewState,
)

log = logging.getLogger(__name__)

# The tables a rebuild empties and fills again from events.
REBUILT = (
    AppliedEvent,
    CustomerFact,
    DealFact,
    SalesPerformance,
    SalesForecast,
    PipelineFact,
    StageFact,
    DealMove,
    DealStageCounts,
    FunnelTotals,
    FunnelOwnerTotals,
    # Counted from the moves the rebuild empties: made again when next needed.
    FunnelSnapshot,
    FunnelSnapshotTotals,
    InteractionFact,
    TicketFact,
    SatisfactionFact,
)
# Events per page of a log, applied in one transaction: the most a producer serves
# (crm_common.outbox.MAX_EVENTS_PAGE). Each kind of event of a page is applied with a
# handful of statements, so a larger page saves round trips and commits.
PAGE_SIZE = 5000
# A running rebuild whose heartbeat is older than this is taken over by another instance.
LEASE = timedelta(seconds=60)
ACTIVE = ("requested", "running")


class RebuildRunning(Exception):
    """Asked for a rebuild while one is under way (it is answered instead)."""


def request(session, by):
    """The active rebuild, or a new one requested now. Answers (rebuild, created)."""
    active = active_rebuild(session)
    if active is not None:
        return active, False
    rebuild = Rebuild(
        rebuild_id=str(uuid.uuid4()),
        status="requested",
        requested_by=by,
        requested_at=utcnow(),
        cursors="{}",
        events_read=0,
        events_applied=0,
    )
    session.add(rebuild)
    session.commit()
    return rebuild, True


def active_rebuild(session):
    return session.scalars(
        select(Rebuild).where(Rebuild.status.in_(ACTIVE)).order_by(Rebuild.requested_at)
    ).first()


# Built once: making and keying the statement anew on every read cost more than running it.
_READ_STATES = select(
    ViewState.view,
    ViewState.as_of,
    ViewState.events_applied,
    select(Rebuild.rebuild_id).where(Rebuild.status.in_(ACTIVE)).exists().label("rebuilding"),
).outerjoin_from(select(literal(1).label("one")).subquery(), ViewState, true())


def read_states(session):
    """({view: its state, as read_state gives it}, whether a rebuild is under way): every
    view's state in one statement, so that the reads of all the reports share one."""
    rows = session.connection().execute(_READ_STATES).all()
    states = {row.view: row for row in rows if row.events_applied is not None}
    return states, rows[0].rebuilding


def read_state(session, view):
    """The view's state (as_of, events_applied; None before its first event) and whether a
    rebuild is under way."""
    states, rebuilding = read_states(session)
    return states.get(view), rebuilding


def latest(session):
    return session.scalars(select(Rebuild).order_by(Rebuild.requested_at.desc())).first()


def claim(session, now):
    """Take a requested rebuild (emptying the views) or one whose instance went quiet.

    Answers its id, or None; commits.
    """
    rebuild = session.scalars(
        select(Rebuild).where(Rebuild.status.in_(ACTIVE)).with_for_update(skip_locked=True)
    ).first()
    if rebuild is None or (rebuild.status == "running" and rebuild.heartbeat_at > now - LEASE):
        session.rollback()
        return None
    if rebuild.status == "requested":
        empty_views(session)
        rebuild.status = "running"
        rebuild.started_at = now
        log.info("rebuilding the reports views (rebuild %s)", rebuild.rebuild_id)
    else:
        log.info("taking over rebuild %s from a quiet instance", rebuild.rebuild_id)
    rebuild.heartbeat_at = now
    session.commit()
    return rebuild.rebuild_id


def empty_views(session):
    tables = [model.__table__ for model in REBUILT]
    if is_postgres(session.get_bind()):
        # One statement, one lock on all of them: live appliers wait, then see empty views.
        session.execute(text(f"TRUNCATE {', '.join(table.name for table in tables)}"))
    else:
        for table in tables:
            session.execute(delete(table))


def cursors_of(rebuild):
    return json.loads(rebuild.cursors)


def record_page(session, rebuild_id, producer, page, applied):
    """Move the rebuild on past a page of `events_since`, in the transaction that applied it."""
    rebuild = session.get(Rebuild, rebuild_id, with_for_update=True)
    cursors = cursors_of(rebuild)
    cursors[producer] = page["next_cursor"]
    rebuild.cursors = json.dumps(cursors, sort_keys=True)
    rebuild.events_read += len(page["events"])
    rebuild.events_applied += applied
    rebuild.heartbeat_at = utcnow()


def finish(session, rebuild_id, status="done", error=None):
    rebuild = session.get(Rebuild, rebuild_id, with_for_update=True)
    rebuild.status = status
    rebuild.error = error
    rebuild.finished_at = utcnow()
    session.commit()
    log.info(
        "rebuild %s %s: %d events read, %d applied",
        rebuild_id,
        status,
        rebuild.events_read,
        rebuild.events_applied,
    )


def shown(rebuild):
    if rebuild is None:
        return None
    return {
        "rebuild_id": rebuild.rebuild_id,
        "status": rebuild.status,
        "requested_by": rebuild.requested_by,
        "requested_at": _time(rebuild.requested_at),
        "started_at": _time(rebuild.started_at),
        "finished_at": _time(rebuild.finished_at),
        "events_read": rebuild.events_read,
        "events_applied": rebuild.events_applied,
        "error": rebuild.error,
    }


def _time(moment):
    return moment.isoformat(timespec="microseconds") if moment else None
