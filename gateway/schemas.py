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


class CustomerCreate(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    # Format rules (and normalization) belong to the customers service.
    email = fields.String(
        allow_none=True, validate=validate.Length(max=320), metadata={"format": "email"}
    )
    phone = fields.String(allow_none=True, validate=validate.Length(max=40))
    company = fields.String(allow_none=True)
    owner = fields.String(allow_none=True)
    status = fields.String(validate=validate.OneOf(CUSTOMER_STATUSES))
    tags = fields.List(fields.String())
    attributes = fields.Dict(keys=fields.String())


class CreateOptions(StrictSchema):
    allow_duplicate = fields.Boolean(load_default=False)


class Page(StrictSchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=512))


class CustomerList(Page):
    status = fields.String(validate=validate.OneOf(CUSTOMER_STATUSES))
    owner = fields.String(validate=validate.Length(min=1, max=100))
