"""What the pipeline service accepts over RPC and what it answers."""

import re
from decimal import Decimal

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from services.pipeline import domain

CURRENCY = re.compile(r"^[A-Z]{3}$")


class Strict(Schema):
    class Meta:
        unknown = RAISE


class Money(fields.Field):
    """An amount as decimal text ("1234.50") or a JSON number; loaded as whole cents."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ValidationError('Give the amount as decimal text, e.g. "1234.50".')
        try:
            return domain.to_cents(value)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


class Currency(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs).strip().upper()
        if not CURRENCY.match(text):
            raise ValidationError("An ISO 4217 code of three letters, e.g. EUR.")
        return text


class StageName(fields.String):
    def _deserialize(self, value, attr, data, **kwargs):
        name = domain.stage_name(super()._deserialize(value, attr, data, **kwargs))
        if not name:
            raise ValidationError("A stage name is not empty.")
        return name


Text = fields.String


class StageInput(Strict):
    id = fields.UUID(load_default=None)
    name = StageName(required=True, validate=validate.Length(max=domain.MAX_STAGE_NAME))
    probability = fields.Decimal(
        required=True, allow_nan=False, validate=validate.Range(min=Decimal(0), max=Decimal(1))
    )

    @post_load
    def plan(self, data, **_):
        if data["probability"] != data["probability"].quantize(Decimal("0.0001")):
            raise ValidationError({"probability": ["At most four decimal places."]})
        return domain.StagePlan(
            name=data["name"],
            probability=data["probability"],
            id=str(data["id"]) if data["id"] else None,
        )


class PipelineInput(Strict):
    name = Text(required=True, validate=validate.Length(min=1, max=100))
    stages = fields.List(
        fields.Nested(StageInput), required=True, validate=validate.Length(min=1, max=30)
    )


class PipelinePatch(PipelineInput):
    """Rename the pipeline, and/or give its open stages in their new order.

    A listed stage with an `id` keeps its history (a rename or a move); one
    without is new; an existing stage left out is archived (refused while
    open deals are in it).
    """

    name = Text(validate=validate.Length(min=1, max=100))
    stages = fields.List(fields.Nested(StageInput), validate=validate.Length(min=1, max=30))


class DealInput(Strict):
    customer_id = fields.UUID(required=True)
    title = Text(required=True, validate=validate.Length(min=1, max=200))
    amount = Money(required=True)
    currency = Currency(required=True)
    owner = Text(load_default=None, allow_none=True, validate=validate.Length(min=1, max=100))
    expected_close_date = fields.Date(load_default=None, allow_none=True)
    pipeline_id = fields.UUID(load_default=None)
    stage = StageName(load_default=None)


class DealPatch(Strict):
    customer_id = fields.UUID()
    title = Text(validate=validate.Length(min=1, max=200))
    amount = Money()
    currency = Currency()
    owner = Text(allow_none=True, validate=validate.Length(min=1, max=100))
    expected_close_date = fields.Date(allow_none=True)


class MoveInput(Strict):
    stage = StageName(required=True)


class LoseInput(Strict):
    reason = Text(required=True, validate=validate.Length(min=1, max=500))


class ReopenInput(Strict):
    # Where the reopened deal goes; the stage it was closed from if not given.
    stage = StageName(load_default=None)


class DealQuery(Strict):
    customer_id = fields.UUID()
    owner = Text(validate=validate.Length(min=1, max=100))
    pipeline_id = fields.UUID()
    stage = StageName()
    status = Text(validate=validate.OneOf(domain.STATUSES))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = Text(load_default=None, validate=validate.Length(min=1, max=200))


class Actor(Strict):
    """Who is asking: `own_only` callers (sales reps) may change only the deals they own.

    The gateway always says both. A caller that leaves either out gets the
    least privilege: own deals only, and with no subject that is none.
    """

    subject = Text(load_default=None, allow_none=True, validate=validate.Length(max=100))
    own_only = fields.Boolean(load_default=True)
