"""The parts of other services' events that reports read (tolerant readers)."""

from marshmallow import EXCLUDE, RAISE, Schema, fields, validate

from crm_common.validation import UtcMoment


class CustomerCreatedData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    status = fields.String(required=True)
    owner = fields.String(load_default=None, allow_none=True)
    created_at = fields.AwareDateTime(required=True, format="iso")


Change = fields.List(fields.Raw(allow_none=True), validate=validate.Length(equal=2))


class CustomerUpdatedData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)


class CustomerMergedData(Schema):
    class Meta:
        unknown = EXCLUDE

    survivor_id = fields.String(required=True)
    merged_ids = fields.List(fields.String(), required=True)
    changes = fields.Dict(keys=fields.String(), values=Change, required=True)


class DealStateData(Schema):
    class Meta:
        unknown = EXCLUDE

    customer_id = fields.String(required=True)
    pipeline_id = fields.String(required=True)
    stage_id = fields.String(required=True)
    status = fields.String(required=True, validate=validate.OneOf(("open", "won", "lost")))
    owner = fields.String(required=True, allow_none=True)
    currency = fields.String(required=True, validate=validate.Length(equal=3))
    amount = fields.Decimal(required=True, allow_nan=False, as_string=True)
    probability = fields.Float(required=True, validate=validate.Range(min=0, max=1))
    expected_close_date = fields.String(required=True, allow_none=True)
    closed_at = fields.String(required=True, allow_none=True)
    created_at = fields.AwareDateTime(required=True, format="iso")


class DealEventData(Schema):
    """Every deal event (created, updated, stage changed, won, lost, reopened) carries `deal`."""

    class Meta:
        unknown = EXCLUDE

    deal_id = fields.String(required=True)
    deal = fields.Nested(DealStateData, required=True)
    # Stage steps (moved, won, lost, reopened) say where from, and the dwell there.
    from_stage_id = fields.String(load_default=None)
    to_stage_id = fields.String(load_default=None)
    dwell_seconds = fields.Integer(load_default=None, validate=validate.Range(min=0))


class StageData(Schema):
    class Meta:
        unknown = EXCLUDE

    stage_id = fields.String(required=True)
    name = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(("open", "won", "lost")))
    position = fields.Integer(required=True)
    probability = fields.Float(load_default=None, validate=validate.Range(min=0, max=1))


class PipelineEventData(Schema):
    class Meta:
        unknown = EXCLUDE

    pipeline_id = fields.String(required=True)
    name = fields.String(required=True)
    is_default = fields.Boolean(required=True)
    stages = fields.List(fields.Nested(StageData), required=True)


MONTH = validate.Regexp(r"^\d{4}-(0[1-9]|1[0-2])$", error="A month as YYYY-MM.")


class Period(Schema):
    """First and last day (inclusive, UTC) of what a report counts."""

    class Meta:
        unknown = RAISE

    from_day = fields.Date(data_key="from")
    to_day = fields.Date(data_key="to")


class FunnelQuery(Period):
    """`from` and `to` are the first and last day the deals counted were created."""

    pipeline_id = fields.UUID()
    owner = fields.String(validate=validate.Length(min=1, max=100))
    as_of = UtcMoment()


class SalesQuery(Schema):
    class Meta:
        unknown = RAISE

    owner = fields.String(validate=validate.Length(min=1, max=100))
    # First and last month (YYYY-MM) of closing, for performance, and of expected close.
    from_month = fields.String(data_key="from", validate=MONTH)
    to_month = fields.String(data_key="to", validate=MONTH)


class InteractionLoggedData(Schema):
    class Meta:
        unknown = EXCLUDE

    interaction_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    channel = fields.String(required=True)
    occurred_at = fields.AwareDateTime(required=True, format="iso")


class TicketEventData(Schema):
    """What every ticket event carries (opened, each workflow step, an SLA breach)."""

    class Meta:
        unknown = EXCLUDE

    ticket_id = fields.String(required=True)
    customer_id = fields.String(required=True)
    priority = fields.String(required=True)
    channel = fields.String(load_default=None)
    assignee = fields.String(allow_none=True)


class TicketOpenedData(TicketEventData):
    opened_at = fields.AwareDateTime(required=True, format="iso")


Seconds = fields.Float(load_default=None, allow_none=True, validate=validate.Range(min=0))


class TicketRespondedData(TicketEventData):
    first = fields.Boolean(required=True)
    seconds_since_open = Seconds


class TicketResolvedData(TicketEventData):
    resolution_seconds = Seconds
    first_response_seconds = Seconds


class TicketSlaBreachedData(TicketEventData):
    kind = fields.String(required=True, validate=validate.OneOf(("first_response", "resolution")))


class SatisfactionRecordedData(Schema):
    class Meta:
        unknown = EXCLUDE

    satisfaction_id = fields.String(required=True)
    ticket_id = fields.String(required=True)
    score = fields.Integer(required=True, validate=validate.Range(min=1, max=5))
    agent = fields.String(load_default=None, allow_none=True)
    channel = fields.String(required=True)
    recorded_at = fields.AwareDateTime(required=True, format="iso")


class SatisfactionQuery(Period):
    group_by = fields.String(validate=validate.OneOf(("agent", "month", "channel")))
    agent = fields.String(validate=validate.Length(min=1, max=100))
    channel = fields.String(validate=validate.Length(min=1, max=16))
    as_of = UtcMoment()


class ServiceQuery(Period):
    agent = fields.String(validate=validate.Length(min=1, max=100))
    priority = fields.String(validate=validate.Length(min=1, max=8))
    channel = fields.String(validate=validate.Length(min=1, max=16))


class SegmentsQuery(Schema):
    class Meta:
        unknown = RAISE

    as_of = UtcMoment()


class SegmentMembersQuery(Schema):
    class Meta:
        unknown = RAISE

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.UUID()
