"""The HTTP API's request shapes: what a client may send, checked before any RPC.

The services check their own rules again (normalization, phone numbers,
attribute limits); these schemas catch the shape of the request: types,
required fields, unknown fields, and the query parameters each list takes.
"""

from marshmallow import RAISE, Schema, fields, validate

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
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=512))


class CustomerFilters(StrictSchema):
    q = fields.String(validate=validate.Length(min=1, max=200))
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

    def __init__(self, **kwargs):
        super().__init__(as_string=True, allow_nan=False, **kwargs)

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
    from_ = fields.String(data_key="from", attribute="from", validate=MONTH)
    to = fields.String(validate=MONTH)
