"""What the interactions service accepts over RPC and what it answers."""

import uuid
from datetime import datetime

from marshmallow import (
    RAISE,
    Schema,
    ValidationError,
    fields,
    post_load,
    pre_load,
    validate,
    validates_schema,
)

from crm_common.validation import NO_UTC_DATE, UNSTORABLE, in_utc, unstorable_path
from services.interactions import domain

MAX_TEXT = 10000
MAX_COMMENT = 2000


def one_of(choices):
    return validate.OneOf(choices, error=f"Must be one of: {', '.join(choices)}.")


def text_field(max_length, required=False):
    if required:
        return fields.String(required=True, validate=validate.Length(min=1, max=max_length))
    return fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=max_length)
    )


Name = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))


class Input(Schema):
    """Unknown fields are refused; text is trimmed (blank optional text is null), times are UTC."""

    class Meta:
        unknown = RAISE

    @pre_load
    def _refuse_unstorable(self, data, **_):
        if isinstance(data, dict):
            where = unstorable_path(data)
            if where:
                raise ValidationError({where.split(".")[0]: [UNSTORABLE]})
        return data

    @post_load
    def _trim(self, data, **_):
        errors = {}
        for key, value in data.items():
            if isinstance(value, uuid.UUID):
                data[key] = str(value)
            elif isinstance(value, datetime):
                try:
                    data[key] = in_utc(value)
                except ValueError:
                    errors[key] = [NO_UTC_DATE]
            elif isinstance(value, str):
                data[key] = value.strip() or None
                if data[key] is None and self.fields[key].required:
                    errors[key] = ["Must not be blank."]
        if errors:
            raise ValidationError(errors)
        return data


class InteractionInput(Input):
    customer_id = fields.UUID(required=True)
    deal_id = fields.UUID(load_default=None, allow_none=True)
    channel = fields.String(required=True, validate=one_of(domain.CHANNELS))
    direction = fields.String(
        load_default=None, allow_none=True, validate=one_of(domain.DIRECTIONS)
    )
    subject = text_field(200)
    body = text_field(MAX_TEXT)
    outcome = text_field(200)
    owner = Name
    occurred_at = fields.AwareDateTime(load_default=None, allow_none=True, format="iso")

    @validates_schema
    def _direction_where_it_matters(self, data, **_):
        if data.get("channel") in domain.DIRECTED_CHANNELS and not data.get("direction"):
            raise ValidationError(
                f"Required for {data['channel']}: inbound or outbound.", "direction"
            )


class FeedbackInput(Input):
    customer_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=one_of(domain.FEEDBACK_KINDS))
    text = text_field(MAX_TEXT, required=True)
    channel = fields.String(load_default="web", validate=one_of(domain.TICKET_CHANNELS))
    # The priority of the ticket a complaint opens.
    priority = fields.String(load_default="normal", validate=one_of(domain.PRIORITIES))


class TicketInput(Input):
    customer_id = fields.UUID(required=True)
    subject = text_field(200, required=True)
    description = text_field(MAX_TEXT)
    priority = fields.String(load_default="normal", validate=one_of(domain.PRIORITIES))
    channel = fields.String(load_default="web", validate=one_of(domain.TICKET_CHANNELS))


class StepInput(Input):
    note = text_field(MAX_TEXT)


class AssignInput(StepInput):
    assignee = fields.String(required=True, validate=validate.Length(min=1, max=100))


class SatisfactionInput(Input):
    score = fields.Integer(required=True, strict=True, validate=validate.OneOf(domain.SCORES))
    comment = text_field(MAX_COMMENT)


class Page(Input):
    limit = fields.Integer(load_default=50, strict=True, validate=validate.Range(min=1, max=500))
    cursor = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=512))


class InteractionQuery(Page):
    customer_id = fields.UUID()
    deal_id = fields.UUID()
    channel = fields.String(validate=one_of(domain.CHANNELS))
    owner = fields.String(validate=validate.Length(min=1, max=100))


class TicketQuery(Page):
    customer_id = fields.UUID()
    status = fields.String(validate=one_of(domain.STATUSES))
    assignee = fields.String(validate=validate.Length(min=1, max=100))
    priority = fields.String(validate=one_of(domain.PRIORITIES))


class TimelineQuery(Page):
    customer_id = fields.UUID(required=True)


# --- answers ----------------------------------------------------------------------------

Time = fields.DateTime(format="iso", allow_none=True)


class InteractionOutput(Schema):
    id = fields.String()
    customer_id = fields.String()
    deal_id = fields.String(allow_none=True)
    channel = fields.String()
    direction = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    body = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    occurred_at = Time
    logged_by = fields.String(allow_none=True)
    created_at = Time


class FeedbackOutput(Schema):
    id = fields.String()
    customer_id = fields.String()
    kind = fields.String()
    text = fields.String(allow_none=True)
    channel = fields.String()
    ticket_id = fields.String(allow_none=True)
    received_at = Time
    received_by = fields.String(allow_none=True)


class StepOutput(Schema):
    step = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor = fields.String(allow_none=True)
    at = Time
    note = fields.String(allow_none=True)


class SatisfactionOutput(Schema):
    id = fields.String()
    ticket_id = fields.String()
    customer_id = fields.String()
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)
    channel = fields.String()
    recorded_at = Time
    recorded_by = fields.String(allow_none=True)


class TicketOutput(Schema):
    id = fields.String()
    customer_id = fields.String()
    feedback_id = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    description = fields.String(allow_none=True)
    priority = fields.String()
    channel = fields.String()
    status = fields.String()
    assignee = fields.String(allow_none=True)
    opened_by = fields.String(allow_none=True)
    opened_at = Time
    assigned_at = Time
    first_responded_at = Time
    resolved_at = Time
    resolved_by = fields.String(allow_none=True)
    closed_at = Time
    reopened_count = fields.Integer()
    sla = fields.Function(
        lambda ticket: {
            "response_due_at": ticket.response_due_at.isoformat(),
            "resolution_due_at": ticket.resolution_due_at.isoformat(),
            "response_breached": ticket.response_breached_at is not None,
            "resolution_breached": ticket.resolution_breached_at is not None,
        }
    )
    survey_due = fields.Function(lambda ticket: ticket.survey_due_at is not None)
    satisfaction_score = fields.Integer(allow_none=True)
    updated_at = Time
    version = fields.Integer()


# What a timeline item says of its record, beside kind, id, at and customer_id.
TIMELINE_SUMMARY = {
    "interaction": {
        "channel": "channel",
        "direction": "direction",
        "subject": "subject",
        "outcome": "outcome",
        "owner": "owner",
        "deal_id": "deal_id",
    },
    "feedback": {
        "feedback_kind": "kind",
        "channel": "channel",
        "text": "text",
        "ticket_id": "ticket_id",
    },
    "ticket": {
        "subject": "subject",
        "status": "status",
        "priority": "priority",
        "channel": "channel",
        "assignee": "assignee",
        "resolved_at": "resolved_at",
    },
    "satisfaction": {
        "ticket_id": "ticket_id",
        "score": "score",
        "comment": "comment",
        "agent": "agent",
    },
}


def timeline_item(kind, at, row):
    item = {"kind": kind, "id": row.id, "at": at.isoformat(), "customer_id": row.customer_id}
    for key, attribute in TIMELINE_SUMMARY[kind].items():
        value = getattr(row, attribute)
        item[key] = value.isoformat() if hasattr(value, "isoformat") else value
    return item
