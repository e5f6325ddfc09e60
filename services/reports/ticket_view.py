"""The satisfaction and service-desk views in the reports database (rules in service_desk.py).

Every ticket event keeps the ticket's `TicketFact` up to date, in any order:
a field a later step changes is only overwritten by a newer event (its
`sequence`). A satisfaction answer is stored once per ticket as a
`SatisfactionFact`; it never changes, so answers as of a past moment are the
answers recorded by then.
"""

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from functools import partial

from sqlalchemy import case, func, or_, select, tuple_

from crm_common.db import is_postgres
from services.reports import service_desk
from services.reports.fact_batch import apply_in_batch
from services.reports.medians import medians
from services.reports.models import SatisfactionFact, TicketFact

SERVICE_VIEW = "service"
SATISFACTION_VIEW = "satisfaction"
GROUPS = {
    "agent": SatisfactionFact.agent,
    "month": SatisfactionFact.month,
    "channel": SatisfactionFact.channel,
}
BREACH_FLAGS = {"first_response": "response_breached", "resolution": "resolution_breached"}


def apply_ticket_events(session, envelopes):
    """Ticket events (opened, a workflow step, an SLA breach), each as it would apply alone,
    in order."""
    keys = {envelope["data"]["ticket_id"] for envelope in envelopes}
    apply_in_batch(session, TicketFact, keys, apply_ticket_event, envelopes)


def new_ticket_fact(data):
    """The fact of a ticket whose first event is `data`."""
    return TicketFact(
        ticket_id=data["ticket_id"],
        customer_id=data["customer_id"],
        priority=data["priority"],
        channel=None,
        assignee=None,
        assignee_sequence=0,
        opened_at=None,
        first_response_seconds=None,
        resolved=False,
        resolved_sequence=0,
        resolution_seconds=None,
        resolution_sequence=0,
        response_breached=False,
        resolution_breached=False,
    )


def _set_assignee(fact, data, sequence):
    if "assignee" in data and sequence > fact.assignee_sequence:
        fact.assignee = data["assignee"]
        fact.assignee_sequence = sequence


def _set_resolved(fact, resolved, sequence):
    if sequence > fact.resolved_sequence:
        fact.resolved = resolved
        fact.resolved_sequence = sequence


def apply_ticket_event(facts, envelope):
    """What one ticket event changes in its ticket's fact (of `facts`, a FactBatch)."""
    data, sequence, kind = envelope["data"], envelope["sequence"], envelope["event_type"]
    fact = facts.get(data["ticket_id"], partial(new_ticket_fact, data))
    if data.get("channel"):
        fact.channel = data["channel"]
    _set_assignee(fact, data, sequence)
    if kind == "ticket_opened":
        fact.opened_at = data["opened_at"]
    elif kind == "ticket_responded" and data.get("first"):
        fact.first_response_seconds = data["seconds_since_open"]
    elif kind == "ticket_resolved":
        _set_resolved(fact, True, sequence)
        if fact.first_response_seconds is None:
            fact.first_response_seconds = data.get("first_response_seconds")
        if sequence > fact.resolution_sequence:
            fact.resolution_seconds = data.get("resolution_seconds")
            fact.resolution_sequence = sequence
    elif kind == "ticket_closed":
        _set_resolved(fact, True, sequence)
    elif kind == "ticket_reopened":
        _set_resolved(fact, False, sequence)
    elif kind == "ticket_sla_breached":
        setattr(fact, BREACH_FLAGS[data["kind"]], True)


def apply_satisfactions_recorded(session, envelopes):
    """Satisfaction answers, each as it would apply alone, in order."""
    keys = {envelope["data"]["ticket_id"] for envelope in envelopes}
    apply_in_batch(session, SatisfactionFact, keys, apply_satisfaction_recorded, envelopes)


def apply_satisfaction_recorded(facts, envelope):
    """One answer per ticket: the first applied stands, a later one (another id) is the
    producer's error."""
    data = envelope["data"]
    facts.get(data["ticket_id"], partial(new_satisfaction_fact, data))


def new_satisfaction_fact(data):
    recorded_at = data["recorded_at"]
    return SatisfactionFact(
        ticket_id=data["ticket_id"],
        satisfaction_id=data["satisfaction_id"],
        score=data["score"],
        agent=data.get("agent"),
        channel=data["channel"],
        recorded_at=recorded_at,
        month=recorded_at.astimezone(UTC).strftime("%Y-%m"),
    )


def day_range(column, days):
    """Conditions keeping `column` (a UTC time) within the days (first, last), both inclusive."""
    first, last = days
    conditions = []
    if first:
        conditions.append(column >= datetime.combine(first, time(), UTC))
    if last:
        conditions.append(column < datetime.combine(last + timedelta(days=1), time(), UTC))
    return conditions


def satisfaction_report(
    session, group_by=None, days=(None, None), agent=None, channel=None, as_of=None
):
    """Satisfaction over the answers recorded in `days` (and by `as_of`), optionally grouped."""
    conditions = day_range(SatisfactionFact.recorded_at, days)
    if agent is not None:
        conditions.append(SatisfactionFact.agent == agent)
    if channel is not None:
        conditions.append(SatisfactionFact.channel == channel)
    if as_of is not None:
        conditions.append(SatisfactionFact.recorded_at <= as_of)
    group = GROUPS[group_by] if group_by else None
    columns = [SatisfactionFact.score, func.count()]
    if group is not None:
        columns.insert(0, group)
    rows = session.execute(select(*columns).where(*conditions).group_by(*columns[:-1])).all()
    overall, grouped = defaultdict(int), defaultdict(lambda: defaultdict(int))
    for row in rows:
        *key, score, count = row
        overall[score] += count
        if key:
            grouped[key[0]][score] += count
    report = service_desk.satisfaction(overall)
    if group_by:
        report["group_by"] = group_by
        report["groups"] = [
            {group_by: key, **service_desk.satisfaction(counts)}
            for key, counts in sorted(grouped.items(), key=lambda item: _sort_key(item[0]))
        ]
    return report


def service_report(
    session, days=(None, None), agent=None, priority=None, channel=None, at_once=None
):
    """Service levels of the tickets opened in `days`, overall and by agent (assignee now).

    Counted in the database: only a row per agent leaves it, not one per ticket. On
    PostgreSQL one statement reads the tickets once for every figure (`at_once`); SQLite,
    which has neither grouping sets nor a median aggregate, asks a few. `at_once=False`
    forces the few on PostgreSQL too, so tests can hold both to the same answers.
    """
    conditions = [TicketFact.opened_at.is_not(None), *day_range(TicketFact.opened_at, days)]
    if agent is not None:
        conditions.append(TicketFact.assignee == agent)
    if priority is not None:
        conditions.append(TicketFact.priority == priority)
    if channel is not None:
        conditions.append(TicketFact.channel == channel)
    if at_once is None:
        at_once = is_postgres(session.get_bind())
    if at_once:
        report, by_agent = _levels_at_once(session, conditions)
    else:
        report = _levels(session, conditions)[None]
        by_agent = _levels(session, conditions, TicketFact.assignee)
    report["by_agent"] = [
        {"agent": assignee, **levels}
        for assignee, levels in sorted(by_agent.items(), key=lambda item: _sort_key(item[0]))
    ]
    return report


def _flagged(condition):
    return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)


def _counted():
    """The service_desk.COUNTS of a group of tickets, as columns."""
    return (
        func.count(),
        _flagged(TicketFact.resolved),
        _flagged(or_(TicketFact.response_breached, TicketFact.resolution_breached)),
        _flagged(TicketFact.response_breached),
        _flagged(TicketFact.resolution_breached),
    )


def _resolution():
    # The newest resolution counts only while the ticket stands resolved (not reopened).
    return case((TicketFact.resolved, TicketFact.resolution_seconds))


def _group_levels(counts, first_response, resolution):
    counts = dict(zip(service_desk.COUNTS, (int(value) for value in counts), strict=True))
    return service_desk.levels(counts, first_response, resolution)


def _levels(session, conditions, group=None):
    """{group value: service_desk.levels} of the tickets meeting `conditions`
    ({None: ...} without `group`, even over no ticket)."""
    keys = [group] if group is not None else []
    counted = select(*keys, *_counted()).where(*conditions)
    rows = session.execute(counted.group_by(*keys)).all()
    first_responses = medians(session, TicketFact.first_response_seconds, conditions, group)
    resolutions = medians(session, _resolution(), conditions, group)
    found = {}
    for row in rows:
        key = row[0] if keys else None
        found[key] = _group_levels(row[-5:], first_responses.get(key), resolutions.get(key))
    return found


def _levels_at_once(session, conditions):
    """(levels over every ticket meeting `conditions`, {assignee: levels}) as _levels()
    gives them, from one PostgreSQL statement: grouping sets make the assignees' rows
    and the overall one in one pass, percentile_cont the medians."""
    assignee = TicketFact.assignee
    rows = session.execute(
        select(
            assignee,
            func.grouping(assignee),  # 1 on the overall row; 0 on an assignee's, null or not
            *_counted(),
            func.percentile_cont(0.5).within_group(TicketFact.first_response_seconds),
            func.percentile_cont(0.5).within_group(_resolution()),
        )
        .where(*conditions)
        .group_by(func.grouping_sets(tuple_(assignee), tuple_()))
    ).all()
    overall, by_agent = None, {}
    for key, is_overall, *counts, first_response, resolution in rows:
        levels = _group_levels(counts, first_response, resolution)
        if is_overall:
            overall = levels
        else:
            by_agent[key] = levels
    return overall, by_agent


def _sort_key(value):
    """Nulls (unassigned, unknown) first, then in order."""
    return (value is not None, value or "")
