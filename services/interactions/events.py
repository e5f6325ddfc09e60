"""Events the interactions service emits on exchange `interactions.events`.

Each schema describes the `data` of one event type at schema_version 1.
Changes within a version are additive only. Interaction and feedback events
have their record as aggregate; every ticket event, satisfaction included,
has the ticket, so `sequence` orders a ticket's whole story.
"""

from marshmallow import Schema, fields

Text = fields.String(allow_none=True)  # free text: null once the customer is erased
Time = fields.String(required=True)  # ISO 8601 with zone
Seconds = fields.Float(allow_none=True)


class InteractionLogged(Schema):
    interaction_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    deal_id = fields.String(allow_none=True)
    channel = fields.String(required=True)
    direction = fields.String(allow_none=True)
    subject = Text
    outcome = Text
    owner = fields.String(allow_none=True)
    occurred_at = Time
    logged_by = fields.String(allow_none=True)


class FeedbackReceived(Schema):
    feedback_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    kind = fields.String(required=True)
    channel = fields.String(required=True)
    text = Text
    # The ticket a complaint opened; null for praise and suggestions.
    ticket_id = fields.String(allow_none=True)
    received_at = Time


class TicketOpened(Schema):
    ticket_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    subject = Text
    priority = fields.String(required=True)
    channel = fields.String(required=True)
    feedback_id = fields.String(allow_none=True)
    opened_by = fields.String(allow_none=True)
    opened_at = Time
    response_due_at = Time
    resolution_due_at = Time


class TicketStepTaken(Schema):
    """What every workflow step carries: the ticket as it is after the step, and who took it."""

    ticket_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    by = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True)
    priority = fields.String(required=True)
    channel = fields.String(required=True)
    note = Text


class TicketAssigned(TicketStepTaken):
    previous_assignee = fields.String(allow_none=True)
    assigned_at = Time


class TicketResponded(TicketStepTaken):
    first = fields.Boolean(required=True)
    responded_at = Time
    seconds_since_open = Seconds


class TicketResolved(TicketStepTaken):
    resolved_at = Time
    resolution_seconds = Seconds
    first_response_seconds = Seconds
    survey_due = fields.Boolean(required=True)


class TicketClosed(TicketStepTaken):
    closed_at = Time


class TicketReopened(TicketStepTaken):
    reopened_at = Time
    reopened_count = fields.Integer(required=True)


class TicketSlaBreached(Schema):
    ticket_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    kind = fields.String(required=True)  # first_response or resolution
    priority = fields.String(required=True)
    due_at = Time
    breached_at = Time
    assignee = fields.String(allow_none=True)


class SatisfactionRecorded(Schema):
    satisfaction_id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    score = fields.Integer(required=True)
    comment = Text
    agent = fields.String(allow_none=True)
    channel = fields.String(required=True)
    priority = fields.String(required=True)
    recorded_at = Time


CATALOG = {
    "interaction_logged": InteractionLogged(),
    "feedback_received": FeedbackReceived(),
    "ticket_opened": TicketOpened(),
    "ticket_assigned": TicketAssigned(),
    "ticket_responded": TicketResponded(),
    "ticket_resolved": TicketResolved(),
    "ticket_closed": TicketClosed(),
    "ticket_reopened": TicketReopened(),
    "ticket_sla_breached": TicketSlaBreached(),
    "satisfaction_recorded": SatisfactionRecorded(),
}
