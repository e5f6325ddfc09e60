"""Interaction and ticket rules: pure functions, no Nameko, no SQL.

A ticket moves open -> assigned -> responded -> resolved -> closed; it may be
reassigned before it is resolved, answered again after its first response,
and reopened from resolved (back to assigned: its handler works on it again).
Its priority sets two service-level targets from the moment it opens: the
first response and the resolution. A target passed without the step is a
breach, recorded once per kind, whether a timer notices it or the late step.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from services.interactions.exceptions import InvalidTicketStep

CHANNELS = ("call", "email", "meeting", "social", "note")
# Interactions on these channels go one way or the other; meetings and notes need not say.
DIRECTED_CHANNELS = ("call", "email", "social")
DIRECTIONS = ("inbound", "outbound")
FEEDBACK_KINDS = ("complaint", "praise", "suggestion")
# Where a ticket came in: reports group satisfaction by it.
TICKET_CHANNELS = ("email", "phone", "web", "chat", "social", "in_person")
PRIORITIES = ("low", "normal", "high", "urgent")
STATUSES = ("open", "assigned", "responded", "resolved", "closed")
SCORES = (1, 2, 3, 4, 5)

# step -> {status it may be taken from: status it leads to}
STEPS = {
    "assign": {"open": "assigned", "assigned": "assigned", "responded": "responded"},
    "respond": {"assigned": "responded", "responded": "responded"},
    "resolve": {"responded": "resolved"},
    "close": {"resolved": "closed"},
    "reopen": {"resolved": "assigned"},
}
STEP_EVENTS = {
    "assign": "ticket_assigned",
    "respond": "ticket_responded",
    "resolve": "ticket_resolved",
    "close": "ticket_closed",
    "reopen": "ticket_reopened",
}
# A satisfaction answer is taken once the ticket is resolved.
SURVEY_STATUSES = ("resolved", "closed")

BREACH_KINDS = ("first_response", "resolution")
# Logged interactions have happened; a clock a little ahead is tolerated.
FUTURE_TOLERANCE = timedelta(minutes=5)

# Free-text fields that may hold personal data: erasure removes them everywhere.
PERSONAL_FIELDS = (
    "subject",
    "body",
    "outcome",
    "text",
    "description",
    "comment",
    "note",
)


# --- SLA --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SlaTargets:
    response: timedelta
    resolution: timedelta


def sla_setting(priority, kind):
    """The configuration key of one target, e.g. CRM_SLA_HIGH_RESPONSE_MINUTES."""
    return f"CRM_SLA_{priority.upper()}_{kind.upper()}_MINUTES"


def sla_policy(config):
    """{priority: SlaTargets} from the service's configuration."""
    return {
        priority: SlaTargets(
            response=timedelta(minutes=config[sla_setting(priority, "response")]),
            resolution=timedelta(minutes=config[sla_setting(priority, "resolution")]),
        )
        for priority in PRIORITIES
    }


def due_times(policy, priority, opened_at):
    """(first response due, resolution due) of a ticket opened at `opened_at`."""
    targets = policy[priority]
    return opened_at + targets.response, opened_at + targets.resolution


def breaches(ticket, now):
    """The breaches of `ticket` not recorded yet: [(kind, due_at)].

    A target is breached when its step came after it, or has not come and
    `now` is past it. A ticket reopened after a timely resolution runs
    against the same resolution target.
    """
    found = []
    if ticket.response_breached_at is None and ticket.response_due_at < (
        ticket.first_responded_at or now
    ):
        found.append(("first_response", ticket.response_due_at))
    if ticket.resolution_breached_at is None and ticket.resolution_due_at < (
        ticket.resolved_at or now
    ):
        found.append(("resolution", ticket.resolution_due_at))
    return found


def breach_column(kind):
    return {"first_response": "response_breached_at", "resolution": "resolution_breached_at"}[kind]


def breach_data(ticket, kind, due_at, breached_at):
    return {
        "ticket_id": ticket.id,
        "customer_id": ticket.customer_id,
        "kind": kind,
        "priority": ticket.priority,
        "due_at": due_at.isoformat(),
        "breached_at": breached_at.isoformat(),
        "assignee": ticket.assignee,
    }


# --- event data of new records ----------------------------------------------------------


def interaction_logged(interaction):
    return {
        "interaction_id": interaction.id,
        "customer_id": interaction.customer_id,
        "deal_id": interaction.deal_id,
        "channel": interaction.channel,
        "direction": interaction.direction,
        "subject": interaction.subject,
        "outcome": interaction.outcome,
        "owner": interaction.owner,
        "occurred_at": interaction.occurred_at.isoformat(),
        "logged_by": interaction.logged_by,
    }


def feedback_received(feedback):
    return {
        "feedback_id": feedback.id,
        "customer_id": feedback.customer_id,
        "kind": feedback.kind,
        "channel": feedback.channel,
        "text": feedback.text,
        "ticket_id": feedback.ticket_id,
        "received_at": feedback.received_at.isoformat(),
    }


def satisfaction_recorded(answer, ticket):
    return {
        "satisfaction_id": answer.id,
        "ticket_id": ticket.id,
        "customer_id": answer.customer_id,
        "score": answer.score,
        "comment": answer.comment,
        "agent": answer.agent,
        "channel": answer.channel,
        "priority": ticket.priority,
        "recorded_at": answer.recorded_at.isoformat(),
    }


# --- the ticket workflow ----------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One step taken: what the history keeps."""

    step: str
    from_status: str
    to_status: str
    actor: str | None
    at: datetime
    note: str | None


def next_status(status, step):
    """The status `step` leads to from `status`; InvalidTicketStep if it cannot be taken."""
    allowed = STEPS[step]
    if status not in allowed:
        raise InvalidTicketStep(
            f"A ticket that is {status} cannot be {PAST_TENSE[step]}; "
            f"{step} is allowed from {', '.join(allowed)}.",
            details={"ticket_status": status, "step": step, "allowed_from": list(allowed)},
        )
    return allowed[status]


PAST_TENSE = {
    "assign": "assigned",
    "respond": "responded to",
    "resolve": "resolved",
    "close": "closed",
    "reopen": "reopened",
}


def open_ticket(ticket, policy, now):
    """Set a new ticket's clock; returns the data of ticket_opened."""
    ticket.status = "open"
    ticket.opened_at = now
    ticket.updated_at = now
    ticket.response_due_at, ticket.resolution_due_at = due_times(policy, ticket.priority, now)
    return {
        "ticket_id": ticket.id,
        "customer_id": ticket.customer_id,
        "subject": ticket.subject,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "feedback_id": ticket.feedback_id,
        "opened_by": ticket.opened_by,
        "opened_at": now.isoformat(),
        "response_due_at": ticket.response_due_at.isoformat(),
        "resolution_due_at": ticket.resolution_due_at.isoformat(),
    }


def take_step(ticket, step, actor, now, assignee=None, note=None):
    """Move `ticket` one step at `now`.

    Returns (Step, events): the history entry, and the events to emit in
    order as (event_type, data): a breach the step reveals (a late first
    response or resolution), then the step's own event.
    """
    from_status = ticket.status
    to_status = next_status(from_status, step)
    data = {"ticket_id": ticket.id, "customer_id": ticket.customer_id, "by": actor}
    opened_for = seconds_between(ticket.opened_at, now)
    if step == "assign":
        if not assignee:
            raise ValueError("assign needs an assignee")
        data["previous_assignee"] = ticket.assignee
        ticket.assignee = assignee
        ticket.assigned_at = now
        data.update(assignee=assignee, assigned_at=now.isoformat())
    elif step == "respond":
        first = ticket.first_responded_at is None
        if first:
            ticket.first_responded_at = now
        data.update(first=first, responded_at=now.isoformat(), seconds_since_open=opened_for)
    elif step == "resolve":
        ticket.resolved_at = now
        ticket.resolved_by = actor
        ticket.survey_due_at = None if ticket.satisfaction_score is not None else now
        data.update(
            resolved_at=now.isoformat(),
            resolution_seconds=opened_for,
            first_response_seconds=seconds_between(ticket.opened_at, ticket.first_responded_at),
            survey_due=ticket.survey_due_at is not None,
        )
    elif step == "close":
        ticket.closed_at = now
        data.update(closed_at=now.isoformat())
    elif step == "reopen":
        ticket.resolved_at = None
        ticket.resolved_by = None
        ticket.survey_due_at = None
        ticket.reopened_count = (ticket.reopened_count or 0) + 1
        data.update(reopened_at=now.isoformat(), reopened_count=ticket.reopened_count)
    data.update(assignee=ticket.assignee, priority=ticket.priority, channel=ticket.channel)
    if note is not None:
        data["note"] = note
    ticket.status = to_status
    ticket.updated_at = now
    events = [
        ("ticket_sla_breached", breach_data(ticket, kind, due_at, now))
        for kind, due_at in record_breaches(ticket, now)
    ]
    events.append((STEP_EVENTS[step], data))
    return Step(step, from_status, to_status, actor, now, note), events


def record_breaches(ticket, now):
    """Mark on `ticket` the breaches not recorded yet; returns them as [(kind, due_at)]."""
    found = breaches(ticket, now)
    for kind, _ in found:
        setattr(ticket, breach_column(kind), now)
    return found


def check_survey(ticket):
    """InvalidTicketStep unless the ticket is ready for its satisfaction answer."""
    if ticket.status not in SURVEY_STATUSES:
        raise InvalidTicketStep(
            f"A ticket that is {ticket.status} takes no satisfaction answer yet; "
            "it must be resolved first.",
            details={"ticket_status": ticket.status, "step": "satisfaction"},
        )


def seconds_between(start, end):
    if start is None or end is None:
        return None
    return round((end - start).total_seconds(), 3)


def ticket_subject(text, limit=200):
    """A complaint's ticket is titled by the first line of the complaint."""
    first_line = " ".join(text.strip().splitlines()[0].split()) if text.strip() else ""
    if len(first_line) > limit:
        first_line = first_line[: limit - 1].rstrip() + "…"
    return first_line or "Complaint"


# --- erasure ----------------------------------------------------------------------------


def scrubbed_event(body):
    """An event body with the free text of `PERSONAL_FIELDS` removed from its data."""
    data = {
        key: (None if key in PERSONAL_FIELDS and value is not None else value)
        for key, value in body["data"].items()
    }
    return {**body, "data": data}
