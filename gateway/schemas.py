"""The HTTP API's request shapes: what a client may send, checked before any RPC.

The services check their own rules again (normalization, phone numbers,
attribute limits); these schemas catch the shape of the request: types,
required fields, unknown fields, and the query parameters each list takes.
"""

from marshmallow import RAISE, Schema, fields, validate

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
