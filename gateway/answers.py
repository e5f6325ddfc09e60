"""What the HTTP API answers: the shapes of its response bodies, for /openapi.json only.

The services shape their answers and the gateway passes most of them on as
they come; these marshmallow schemas describe them for clients. Nothing
loads or dumps with them: tests hold real answers against the document.

A field every answer carries is `required` (and `allow_none` where it may be
null); one that only some answers carry is not. Answers may gain fields within
a version (`unknown = INCLUDE` documents that), so a client ignores fields it
does not know.
"""

from marshmallow import INCLUDE, Schema, fields, validate

from gateway.auth import ROLES
from gateway.http import ERROR_CODES
from gateway.schemas import (
    CUSTOMER_STATUSES,
    DEAL_STATUSES,
    DIRECTIONS,
    FEEDBACK_KINDS,
    INTERACTION_CHANNELS,
    TICKET_CHANNELS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
)


def always(field_class, *args, nullable=False, **kwargs):
    """A field every answer of its schema has; null in some where `nullable`."""
    return field_class(*args, required=True, allow_none=nullable, **kwargs)


def one_of(choices, nullable=False):
    return always(fields.String, nullable=nullable, validate=validate.OneOf(choices))


def listed(schema):
    return always(fields.List, fields.Nested(schema))


def money(description):
    """Decimal text, exact to the cent ("1234.50")."""
    return always(
        fields.String, metadata={"pattern": r"^-?\d+\.\d{2}$", "description": description}
    )


def rate(description):
    """A fraction in [0, 1]; null over nothing to count."""
    return always(fields.Float, nullable=True, metadata={"description": description})


NEXT_CURSOR = "Give it as `cursor` for the next page; null on the last page."


class Answer(Schema):
    class Meta:
        unknown = INCLUDE


def page_of(item_schema, name):
    """The list envelope: a page of `item_schema` and the cursor of the next one."""
    return type(
        name,
        (Answer,),
        {
            "items": listed(item_schema),
            "next_cursor": always(
                fields.String, nullable=True, metadata={"description": NEXT_CURSOR}
            ),
        },
    )


# --- errors ----------------------------------------------------------------------------------


class ErrorDetail(Answer):
    code = always(
        fields.String,
        metadata={
            "description": "For programs: the status's code ("
            + ", ".join(f"{code} for {status}" for status, code in sorted(ERROR_CODES.items()))
            + "), or a finer one (IDEMPOTENCY_KEY_REUSED...). More may come.",
            "example": "VALIDATION_ERROR",
        },
    )
    message = always(fields.String, metadata={"description": "For a person to read."})
    field_errors = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        metadata={
            "description": "Per field of the request, what is wrong with it: a list of "
            "messages, or an object of the same shape for a nested field."
        },
    )
    existing_id = fields.UUID(
        metadata={"description": "409 on a likely duplicate: the customer it matches."}
    )


class Error(Answer):
    """Every failure has this shape; some add details (`existing_id`, `allowed_from`...)."""

    error = always(fields.Nested, ErrorDetail)


# --- system ----------------------------------------------------------------------------------


class Health(Answer):
    status = one_of(("ok",))


class Readiness(Answer):
    status = one_of(("ready", "not_ready"))
    checks = always(
        fields.Dict,
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": '"ok", or why the broker, Redis or a service does not answer.'},
    )
    outbox_backlog = always(
        fields.Dict,
        keys=fields.String(),
        values=fields.Integer(allow_none=True),
        metadata={
            "description": "Per service: events committed and not yet published to the broker "
            "(it grows while the broker is away); null for a service that does not answer."
        },
    )
    reports_lag_seconds = always(
        fields.Float,
        nullable=True,
        metadata={
            "description": "Seconds since the newest event the reports applied occurred; null "
            "before the first, or when reports do not answer. It grows while events wait, "
            "and while none happen."
        },
    )


# --- customers -------------------------------------------------------------------------------


class Customer(Answer):
    id = always(fields.UUID)
    name = always(fields.String)
    email = always(fields.String, nullable=True)
    phone = always(fields.String, nullable=True)
    company = always(fields.String, nullable=True)
    owner = always(fields.String, nullable=True)
    status = one_of(CUSTOMER_STATUSES)
    tags = always(fields.List, fields.String())
    attributes = always(fields.Dict, keys=fields.String())
    segment = always(fields.String, nullable=True)
    created_at = always(fields.DateTime)
    updated_at = always(fields.DateTime)
    version = always(fields.Integer)
    erased = always(fields.Boolean)
    resolved_from = fields.UUID(
        metadata={"description": "Asked for by the id of a customer merged into this one."}
    )


CustomerPage = page_of(Customer, "CustomerPage")


class MergedCustomer(Customer):
    merged_ids = always(fields.List, fields.UUID())


class DuplicatePair(Answer):
    score = always(fields.Float)
    matched = always(fields.List, fields.String())
    customers = listed(Customer)


DuplicatePage = page_of(DuplicatePair, "DuplicatePage")


class HeldCustomer(Customer):
    merged_into = always(fields.UUID, nullable=True)


class MergeRecord(Answer):
    survivor_id = always(fields.UUID)
    merged_id = always(fields.UUID)
    merged_at = always(fields.DateTime)
    merged_by = always(fields.String, nullable=True)
    snapshot = always(fields.Dict, keys=fields.String())


class Event(Answer):
    event_id = always(fields.UUID)
    event_type = always(fields.String)
    schema_version = always(fields.Integer)
    occurred_at = always(fields.DateTime)
    producer = always(fields.String)
    aggregate_id = always(fields.String)
    sequence = always(fields.Integer)
    data = always(fields.Dict, keys=fields.String())


class CustomerData(Answer):
    customer = always(fields.Nested, HeldCustomer)
    merges = listed(MergeRecord)
    events = listed(Event)


class RejectedRow(Answer):
    line = always(fields.Integer)
    errors = always(fields.Dict, keys=fields.String())


class DuplicateRow(Answer):
    line = always(fields.Integer)
    existing_id = always(fields.UUID)
    score = always(fields.Float)
    matched = always(fields.List, fields.String())


class ImportResult(Answer):
    created = always(fields.Integer)
    updated = always(fields.Integer)
    unchanged = always(fields.Integer)
    folded = always(fields.Integer, metadata={"description": "Rows completing an earlier row."})
    duplicates = always(fields.Integer)
    rejected = always(fields.Integer)
    rejected_rows = listed(RejectedRow)
    duplicate_rows = listed(DuplicateRow)
    ignored_columns = always(fields.List, fields.String())


class TimelineItem(Answer):
    """`kind`, `id`, `at` and `customer_id`, and a summary of the record by its kind."""

    kind = one_of(("deal", "interaction", "feedback", "ticket", "satisfaction"))
    id = always(fields.UUID)
    at = always(fields.DateTime)
    customer_id = always(fields.UUID)
    title = fields.String()
    pipeline_id = fields.UUID()
    stage = fields.String()
    status = fields.String()
    amount = fields.String()
    currency = fields.String()
    owner = fields.String(allow_none=True)
    closed_at = fields.DateTime(allow_none=True)
    channel = fields.String()
    direction = fields.String(allow_none=True)
    subject = fields.String(allow_none=True)
    outcome = fields.String(allow_none=True)
    deal_id = fields.UUID(allow_none=True)
    feedback_kind = fields.String()
    text = fields.String(allow_none=True)
    ticket_id = fields.UUID(allow_none=True)
    priority = fields.String()
    assignee = fields.String(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    score = fields.Integer()
    comment = fields.String(allow_none=True)
    agent = fields.String(allow_none=True)


TimelinePage = page_of(TimelineItem, "TimelinePage")


# --- pipelines and deals ---------------------------------------------------------------------


class Stage(Answer):
    id = always(fields.UUID)
    name = always(fields.String)
    kind = one_of(("open", "won", "lost"))
    probability = always(fields.Float)
    position = always(fields.Integer)


class Pipeline(Answer):
    id = always(fields.UUID)
    name = always(fields.String)
    is_default = always(fields.Boolean)
    stages = listed(Stage)
    created_at = always(fields.DateTime)
    version = always(fields.Integer)


class PipelineList(Answer):
    items = listed(Pipeline)


class Deal(Answer):
    id = always(fields.UUID)
    customer_id = always(fields.UUID)
    title = always(fields.String)
    amount = money("The amount, in `currency`.")
    currency = always(fields.String)
    owner = always(fields.String, nullable=True)
    expected_close_date = always(fields.Date, nullable=True)
    pipeline_id = always(fields.UUID)
    stage_id = always(fields.UUID)
    stage = always(fields.String)
    probability = always(fields.Float)
    status = one_of(DEAL_STATUSES)
    created_at = always(fields.DateTime)
    closed_at = always(fields.DateTime, nullable=True)
    lost_reason = always(fields.String, nullable=True)
    stage_entered_at = always(fields.DateTime)
    created_by = always(fields.String, nullable=True)
    updated_at = always(fields.DateTime)
    version = always(fields.Integer)


DealPage = page_of(Deal, "DealPage")


class DealStep(Answer):
    kind = one_of(("created", "moved", "won", "lost", "reopened"))
    from_stage = always(fields.String, nullable=True)
    to_stage = always(fields.String)
    at = always(fields.DateTime)
    by = always(fields.String, nullable=True)
    dwell_seconds = always(
        fields.Integer, nullable=True, metadata={"description": "Time in the stage it left."}
    )
    reason = always(fields.String, nullable=True)


class DealHistory(Answer):
    deal_id = always(fields.UUID)
    items = listed(DealStep)


# --- interactions, feedback, tickets ---------------------------------------------------------


class Interaction(Answer):
    id = always(fields.UUID)
    customer_id = always(fields.UUID)
    deal_id = always(fields.UUID, nullable=True)
    channel = one_of(INTERACTION_CHANNELS)
    direction = one_of(DIRECTIONS, nullable=True)
    subject = always(fields.String, nullable=True)
    body = always(fields.String, nullable=True)
    outcome = always(fields.String, nullable=True)
    owner = always(fields.String, nullable=True)
    occurred_at = always(fields.DateTime)
    logged_by = always(fields.String, nullable=True)
    created_at = always(fields.DateTime)


InteractionPage = page_of(Interaction, "InteractionPage")


class ServiceLevelTargets(Answer):
    response_due_at = always(fields.DateTime)
    resolution_due_at = always(fields.DateTime)
    response_breached = always(fields.Boolean)
    resolution_breached = always(fields.Boolean)


class Ticket(Answer):
    id = always(fields.UUID)
    customer_id = always(fields.UUID)
    feedback_id = always(fields.UUID, nullable=True)
    subject = always(fields.String, nullable=True)
    description = always(fields.String, nullable=True)
    priority = one_of(TICKET_PRIORITIES)
    channel = one_of(TICKET_CHANNELS)
    status = one_of(TICKET_STATUSES)
    assignee = always(fields.String, nullable=True)
    opened_by = always(fields.String, nullable=True)
    opened_at = always(fields.DateTime)
    assigned_at = always(fields.DateTime, nullable=True)
    first_responded_at = always(fields.DateTime, nullable=True)
    resolved_at = always(fields.DateTime, nullable=True)
    resolved_by = always(fields.String, nullable=True)
    closed_at = always(fields.DateTime, nullable=True)
    reopened_count = always(fields.Integer)
    sla = always(fields.Nested, ServiceLevelTargets)
    survey_due = always(fields.Boolean)
    satisfaction_score = always(fields.Integer, nullable=True)
    updated_at = always(fields.DateTime)
    version = always(fields.Integer)


TicketPage = page_of(Ticket, "TicketPage")


class TicketStep(Answer):
    step = always(fields.String)
    from_status = always(fields.String, nullable=True)
    to_status = one_of(TICKET_STATUSES)
    actor = always(fields.String, nullable=True)
    at = always(fields.DateTime)
    note = always(fields.String, nullable=True)


class Satisfaction(Answer):
    id = always(fields.UUID)
    ticket_id = always(fields.UUID)
    customer_id = always(fields.UUID)
    score = always(fields.Integer, validate=validate.Range(min=1, max=5))
    comment = always(fields.String, nullable=True)
    agent = always(fields.String, nullable=True)
    channel = always(fields.String)
    recorded_at = always(fields.DateTime)
    recorded_by = always(fields.String, nullable=True)


class TicketDetail(Ticket):
    history = listed(TicketStep)
    satisfaction = always(fields.Nested, Satisfaction, nullable=True)


class Feedback(Answer):
    id = always(fields.UUID)
    customer_id = always(fields.UUID)
    kind = one_of(FEEDBACK_KINDS)
    text = always(fields.String, nullable=True)
    channel = one_of(TICKET_CHANNELS)
    ticket_id = always(fields.UUID, nullable=True)
    received_at = always(fields.DateTime)
    received_by = always(fields.String, nullable=True)
    ticket = always(
        fields.Nested,
        Ticket,
        nullable=True,
        metadata={"description": "The ticket a complaint opened."},
    )


# --- reports ---------------------------------------------------------------------------------


class Report(Answer):
    """How fresh a report is."""

    as_of = always(
        fields.DateTime,
        nullable=True,
        metadata={
            "description": "Time of the newest event applied (the moment asked for, with "
            "`as_of=`); null before the first."
        },
    )
    lag_seconds = always(fields.Float, nullable=True, metadata={"description": "Now - as_of."})
    time_travel = fields.Boolean(metadata={"description": "Answered `as_of=` a past moment."})
    rebuilding = fields.Boolean(
        metadata={"description": "A rebuild is under way: the numbers are growing back."}
    )


class CustomerCount(Answer):
    status = one_of(CUSTOMER_STATUSES)
    owner = always(fields.String, nullable=True)
    customers = always(fields.Integer)


class CustomersReport(Report):
    items = listed(CustomerCount)
    total = always(fields.Integer)


class SalesPerformance(Answer):
    owner = always(fields.String, nullable=True)
    month = always(fields.String, metadata={"description": "Month closed, YYYY-MM."})
    won = always(fields.Integer)
    lost = always(fields.Integer)
    won_amount = always(
        fields.Dict,
        keys=fields.String(),
        values=fields.String(),
        metadata={"description": 'Per currency, decimal text: {"EUR": "1200.00"}.'},
    )
    win_rate = rate("won / (won + lost).")


class SalesForecast(Answer):
    month = always(
        fields.String,
        metadata={"description": "Expected close month, YYYY-MM, or `unscheduled`."},
    )
    owner = always(fields.String, nullable=True)
    currency = always(fields.String)
    deals = always(fields.Integer)
    amount = money("The open deals' amounts.")
    weighted_amount = money("Each amount times its stage's probability.")


class SalesReport(Report):
    from_ = always(
        fields.String,
        nullable=True,
        data_key="from",
        metadata={"description": "First month of the answer, YYYY-MM; null: from the start."},
    )
    to = always(
        fields.String,
        nullable=True,
        metadata={"description": "Last month of the answer, YYYY-MM; null: no end."},
    )
    performance = listed(SalesPerformance)
    forecast = listed(SalesForecast)


class FunnelStage(Answer):
    stage = always(fields.String)
    stage_id = always(fields.UUID)
    entered = always(fields.Integer)
    current = always(fields.Integer)
    converted = always(fields.Integer, nullable=True)
    conversion_rate = rate("converted / entered.")
    drop_rate = rate("Deals lost in the stage / entered.")
    avg_dwell_hours = always(fields.Float, nullable=True)


class FunnelReport(Report):
    pipeline_id = always(fields.UUID)
    pipeline = always(fields.String)
    stages = listed(FunnelStage)
    won = always(fields.Integer)
    lost = always(fields.Integer)
    win_rate = rate("won / (won + lost).")
    bottleneck = always(fields.String, nullable=True)


class SegmentShare(Answer):
    segment = always(fields.String)
    customers = always(fields.Integer)
    share = rate("Of all customers.")
    avg_monetary = always(fields.String, nullable=True)


class SegmentsReport(Report):
    items = listed(SegmentShare)


class SegmentMember(Answer):
    customer_id = always(fields.UUID)
    segment = always(fields.String)
    recency_days = always(fields.Integer, nullable=True)
    frequency = always(fields.Integer)
    monetary = money("Sum of the won deals' amounts.")
    engagement = always(fields.Integer)
    since = always(fields.DateTime)


class SegmentMembers(Report):
    items = listed(SegmentMember)
    next_cursor = always(fields.UUID, nullable=True, metadata={"description": NEXT_CURSOR})


class ScoreCount(Answer):
    score = always(fields.Integer)
    count = always(fields.Integer)


class SatisfactionFigures(Answer):
    responses = always(fields.Integer)
    csat_avg = always(fields.Float, nullable=True, metadata={"description": "Mean score, 1-5."})
    csat_pct = rate("Share of scores 4 or 5.")
    distribution = listed(ScoreCount)


class SatisfactionGroup(SatisfactionFigures):
    """Its key is the field named by `group_by`."""

    agent = fields.String(allow_none=True)
    month = fields.String()
    channel = fields.String()


class SatisfactionReport(Report, SatisfactionFigures):
    group_by = fields.String(validate=validate.OneOf(("agent", "month", "channel")))
    groups = fields.List(fields.Nested(SatisfactionGroup))


class ServiceLevels(Answer):
    opened = always(fields.Integer)
    resolved = always(fields.Integer)
    resolution_rate = rate("resolved / opened.")
    median_first_response_seconds = always(fields.Float, nullable=True)
    median_resolution_seconds = always(fields.Float, nullable=True)
    breached = always(fields.Integer)
    first_response_breaches = always(fields.Integer)
    resolution_breaches = always(fields.Integer)
    sla_breach_rate = rate("Tickets past either target / opened.")


class AgentServiceLevels(ServiceLevels):
    agent = always(fields.String, nullable=True)


class ServiceReport(Report, ServiceLevels):
    by_agent = listed(AgentServiceLevels)


class Rebuild(Answer):
    rebuild_id = always(fields.UUID)
    status = one_of(("requested", "running", "done", "failed"))
    requested_by = always(fields.String, nullable=True)
    requested_at = always(fields.DateTime)
    started_at = always(fields.DateTime, nullable=True)
    finished_at = always(fields.DateTime, nullable=True)
    events_read = always(fields.Integer)
    events_applied = always(fields.Integer)
    error = always(fields.String, nullable=True)


# --- dead letters ----------------------------------------------------------------------------


class DeadLetterCounts(Answer):
    service = always(fields.String)
    retrying = always(fields.Integer, metadata={"description": "Waiting for an automatic retry."})
    dead = always(fields.Integer, metadata={"description": "Waiting for an admin."})
    oldest_failed_at = always(fields.DateTime, nullable=True)


class DeadLetterSummary(Answer):
    services = listed(DeadLetterCounts)


class DeadLetterEntry(Answer):
    id = always(fields.UUID)
    service = always(fields.String)
    status = one_of(("retrying", "dead"))
    kind = one_of(("invalid", "permanent", "transient"))
    handler = always(
        fields.String, nullable=True, metadata={"description": "The handler that failed it."}
    )
    producer = always(fields.String, nullable=True)
    event_type = always(fields.String, nullable=True)
    event_id = always(fields.String, nullable=True)
    aggregate_id = always(fields.String, nullable=True)
    error = always(fields.String, metadata={"description": "The latest error."})
    attempts = always(fields.Integer)
    first_failed_at = always(fields.DateTime)
    last_failed_at = always(fields.DateTime)
    next_attempt_at = always(fields.DateTime, nullable=True)


class DeadLetter(DeadLetterEntry):
    body = always(fields.Raw, metadata={"description": "The message as it arrived."})


DeadLetterPage = page_of(DeadLetterEntry, "DeadLetterPage")


class ReplayOutcome(Answer):
    id = always(fields.UUID)
    outcome = one_of(("applied", "already_applied", "ignored", "failed"))
    letter = always(
        fields.Nested,
        DeadLetter,
        nullable=True,
        metadata={"description": "The entry with its new error when the replay failed."},
    )


class ReplayResults(Answer):
    replayed = always(fields.Integer)
    applied = always(fields.Integer)
    failed = always(fields.Integer)
    results = listed(ReplayOutcome)


# --- tokens ----------------------------------------------------------------------------------


class TokenRecord(Answer):
    id = always(fields.UUID)
    role = one_of(ROLES)
    subject = always(fields.String)
    created_at = always(fields.DateTime)
    created_by = always(fields.String)
    expires_in_seconds = always(fields.Integer, nullable=True)


class IssuedToken(TokenRecord):
    token = always(fields.String, metadata={"description": "The secret; shown this once."})


class TokenList(Answer):
    items = listed(TokenRecord)
    roles = always(fields.List, fields.String())


class Caller(Answer):
    subject = always(fields.String)
    role = one_of(ROLES)
    token_id = always(fields.UUID, nullable=True)
    permissions = always(fields.List, fields.String())
