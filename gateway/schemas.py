"""The HTTP API's request shapes: what a client may send, checked before any RPC.

The services check their own rules again (normalization, phone numbers,
attribute limits); these schemas catch the shape of the request: types,
required fields, unknown fields, and the query parameters each list takes.
"""

import re

from marshmallow import RAISE, Schema, fields, validate

from crm_common.dead_letters import DeadLetterQuery
from crm_common.validation import UtcMoment
from gateway.auth import ROLES

CUSTOMER_STATUSES = ("lead", "prospect", "customer", "churned")


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class CustomerPatch(StrictSchema):
    """A partial update: only the fields sent change; `attributes` replaces the whole object."""

    name = fields.String(validate=validate.Length(min=1, max=200))
    email = fields.String(
        allow_none=True, validate=validate.Length(max=320), metadata={"format": "email"}
    )
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    company = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(CUSTOMER_STATUSES))
    tags = fields.List(fields.String())
    attributes = fields.Dict(keys=fields.String())


class CustomerCreate(CustomerPatch):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))


class CreateOptions(StrictSchema):
    allow_duplicate = fields.Boolean(load_default=False)


class ImportOptions(StrictSchema):
    allow_duplicates = fields.Boolean(load_default=False)
    # JSON object {"column in the file": "field"}; see the README.
    mapping = fields.String(validate=validate.Length(min=2, max=10000))


class MergeBody(StrictSchema):
    merge_ids = fields.List(fields.UUID(), required=True, validate=validate.Length(min=1, max=50))


class Page(StrictSchema):
    limit = fields.Integer(
        load_default=50,
        validate=validate.Range(min=1, max=500),
        metadata={"description": "How many items at most."},
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=512),
        metadata={"description": "The `next_cursor` of the page before."},
    )


class CustomerFilters(StrictSchema):
    q = fields.String(
        validate=validate.Length(min=1, max=200),
        metadata={"description": "Words that begin words of the name, company, email or phone."},
    )
    tag = fields.String(validate=validate.Length(min=1, max=50))
    status = fields.String(validate=validate.OneOf(CUSTOMER_STATUSES))
    owner = fields.String(validate=validate.Length(min=1, max=100))
    segment = fields.String(validate=validate.Length(min=1, max=32))


class CustomerList(Page, CustomerFilters):
    pass


# --- auth -----------------------------------------------------------------------------------


class TokenRequest(StrictSchema):
    role = fields.String(required=True, validate=validate.OneOf(ROLES))
    # Who the token speaks for: a deal's owner, a ticket's assignee.
    subject = fields.String(required=True, validate=validate.Length(min=1, max=100))
    expires_in_days = fields.Integer(validate=validate.Range(min=1, max=3650))


# --- pipelines and deals --------------------------------------------------------------------

DEAL_STATUSES = ("open", "won", "lost")


class Amount(fields.Decimal):
    """Money as decimal text ("1234.50") or a JSON number, never true/false; sent on as text."""

    # What /openapi.json says: the text form, within the pipeline service's limits.
    DESCRIBED = {
        "type": "string",
        "pattern": r"^\d{1,13}(\.\d{1,2})?$",
        "description": 'Decimal text, at most two places ("1234.50"); a JSON number is taken too.',
    }

    def __init__(self, **kwargs):
        super().__init__(as_string=True, allow_nan=False, metadata=self.DESCRIBED, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool):
            raise self.make_error("invalid")
        return str(super()._deserialize(value, attr, data, **kwargs))


class StageInput(StrictSchema):
    id = fields.UUID()
    name = fields.String(required=True, validate=validate.Length(min=1, max=40))
    probability = fields.Decimal(
        required=True, as_string=True, allow_nan=False, validate=validate.Range(min=0, max=1)
    )


class PipelinePatch(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=100))
    stages = fields.List(fields.Nested(StageInput), validate=validate.Length(min=1, max=30))


class PipelineCreate(PipelinePatch):
    name = fields.String(required=True, validate=validate.Length(min=1, max=100))
    stages = fields.List(
        fields.Nested(StageInput), required=True, validate=validate.Length(min=1, max=30)
    )


class DealPatch(StrictSchema):
    customer_id = fields.UUID()
    title = fields.String(validate=validate.Length(min=1, max=200))
    amount = Amount()
    currency = fields.String(validate=validate.Length(equal=3))
    owner = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    expected_close_date = fields.Date(allow_none=True)


class DealCreate(DealPatch):
    customer_id = fields.UUID(required=True)
    title = fields.String(required=True, validate=validate.Length(min=1, max=200))
    amount = Amount(required=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    pipeline_id = fields.UUID()
    stage = fields.String(validate=validate.Length(min=1, max=40))


class DealMove(StrictSchema):
    stage = fields.String(required=True, validate=validate.Length(min=1, max=40))


class DealLost(StrictSchema):
    reason = fields.String(required=True, validate=validate.Length(min=1, max=500))


class DealReopen(StrictSchema):
    stage = fields.String(validate=validate.Length(min=1, max=40))


class DealFilters(StrictSchema):
    customer_id = fields.UUID()
    owner = fields.String(validate=validate.Length(min=1, max=100))
    pipeline_id = fields.UUID()
    stage = fields.String(validate=validate.Length(min=1, max=40))
    status = fields.String(validate=validate.OneOf(DEAL_STATUSES))


class DealList(Page, DealFilters):
    pass


# --- reports --------------------------------------------------------------------------------

MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="A month as YYYY-MM.")


class SalesReportQuery(StrictSchema):
    owner = fields.String(validate=validate.Length(min=1, max=100))
    # Months (YYYY-MM), inclusive: of closing for performance, of expected close for the forecast.
    from_ = fields.String(
        data_key="from",
        attribute="from",
        validate=MONTH,
        metadata={
            "description": "First month, YYYY-MM. Without `from` and `to`: from 11 months "
            "before the current one to 12 after it, with the unscheduled forecast."
        },
    )
    to = fields.String(
        validate=MONTH, metadata={"description": "Last month, YYYY-MM (see `from`)."}
    )


# --- interactions, feedback, tickets, satisfaction ----------------------------------------

INTERACTION_CHANNELS = ("call", "email", "meeting", "social", "note")
DIRECTIONS = ("inbound", "outbound")
FEEDBACK_KINDS = ("complaint", "praise", "suggestion")
TICKET_CHANNELS = ("email", "phone", "web", "chat", "social", "in_person")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_STATUSES = ("open", "assigned", "responded", "resolved", "closed")
LONG_TEXT = 10000


def _optional_text(max_length):
    return fields.String(allow_none=True, validate=validate.Length(max=max_length))


class InteractionCreate(StrictSchema):
    """`direction` is required for calls, emails and social messages (the service checks)."""

    customer_id = fields.UUID(required=True)
    deal_id = fields.UUID(allow_none=True)
    channel = fields.String(required=True, validate=validate.OneOf(INTERACTION_CHANNELS))
    direction = fields.String(allow_none=True, validate=validate.OneOf(DIRECTIONS))
    subject = _optional_text(200)
    body = _optional_text(LONG_TEXT)
    outcome = _optional_text(200)
    owner = fields.String(allow_none=True, validate=validate.Length(min=1, max=100))
    # When it happened (ISO 8601 with a zone); now when left out.
    occurred_at = fields.AwareDateTime(allow_none=True, format="iso")


class InteractionList(Page):
    customer_id = fields.UUID()
    deal_id = fields.UUID()
    channel = fields.String(validate=validate.OneOf(INTERACTION_CHANNELS))
    owner = fields.String(validate=validate.Length(min=1, max=100))


class FeedbackCreate(StrictSchema):
    """A complaint opens a ticket at `priority` (default normal)."""

    customer_id = fields.UUID(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(FEEDBACK_KINDS))
    text = fields.String(required=True, validate=validate.Length(min=1, max=LONG_TEXT))
    channel = fields.String(validate=validate.OneOf(TICKET_CHANNELS))
    priority = fields.String(validate=validate.OneOf(TICKET_PRIORITIES))


class TicketCreate(StrictSchema):
    customer_id = fields.UUID(required=True)
    subject = fields.String(required=True, validate=validate.Length(min=1, max=200))
    description = _optional_text(LONG_TEXT)
    priority = fields.String(validate=validate.OneOf(TICKET_PRIORITIES))
    channel = fields.String(validate=validate.OneOf(TICKET_CHANNELS))


class TicketList(Page):
    customer_id = fields.UUID()
    status = fields.String(validate=validate.OneOf(TICKET_STATUSES))
    assignee = fields.String(validate=validate.Length(min=1, max=100))
    priority = fields.String(validate=validate.OneOf(TICKET_PRIORITIES))


class TicketStepBody(StrictSchema):
    note = _optional_text(LONG_TEXT)


class TicketAssignBody(TicketStepBody):
    assignee = fields.String(required=True, validate=validate.Length(min=1, max=100))


class SatisfactionBody(StrictSchema):
    score = fields.Integer(required=True, strict=True, validate=validate.Range(min=1, max=5))
    comment = _optional_text(2000)


class Moment(UtcMoment):
    """An ISO 8601 time with its zone. A "+01:00" sent unencoded in a query arrives as
    " 01:00" (a plus is a space there): read it as the offset it was."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            value = re.sub(r" (\d\d(:?\d\d)?)$", r"+\1", value)
        return super()._deserialize(value, attr, data, **kwargs)


class Period(StrictSchema):
    """First and last day (inclusive, UTC) of what a report counts."""

    from_ = fields.Date(
        data_key="from", attribute="from", metadata={"description": "The first day counted."}
    )
    to = fields.Date(metadata={"description": "The last day counted."})


class FunnelReportQuery(Period):
    """`from` and `to`: the days the deals counted were created."""

    pipeline_id = fields.UUID()
    owner = fields.String(validate=validate.Length(min=1, max=100))
    as_of = Moment(metadata={"description": "The funnel as it stood at this moment."})


class SatisfactionReportQuery(Period):
    """`from` and `to`: the days the answers were recorded."""

    group_by = fields.String(validate=validate.OneOf(("agent", "month", "channel")))
    agent = fields.String(validate=validate.Length(min=1, max=100))
    channel = fields.String(validate=validate.OneOf(TICKET_CHANNELS))
    as_of = Moment(metadata={"description": "Count the answers recorded by this moment."})


class ServiceReportQuery(Period):
    """`from` and `to`: the days the tickets counted were opened; `agent`: their assignee."""

    agent = fields.String(validate=validate.Length(min=1, max=100))
    priority = fields.String(validate=validate.OneOf(TICKET_PRIORITIES))
    channel = fields.String(validate=validate.OneOf(TICKET_CHANNELS))


class SegmentsReportQuery(StrictSchema):
    as_of = Moment(metadata={"description": "The segments as they would have been then."})


class SegmentMembersQuery(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.UUID()


class DeadLetterList(DeadLetterQuery):
    """Filters and paging of a service's dead letters: the service reads the same schema."""


class DeadLetterReplay(StrictSchema):
    """Which entries a bulk replay runs: the dead ones unless `status` says, oldest first."""

    status = fields.String(validate=validate.OneOf(("retrying", "dead")))
    event_type = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))
