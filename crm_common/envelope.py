"""The one envelope every event travels in (SPEC section 3).

Producers build it with `make_envelope`, which validates the event's own data
schema too; consumers load it with `load_envelope` before touching `data`.
"""

import uuid
from datetime import UTC, datetime

from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from crm_common.fast_load import loader

# Every event's data is at this version: fields are only added within it (SPEC section 3).
SCHEMA_VERSION = 1

# [old, new] of one changed field, as every `changes: {field: [old, new]}` of an event's data.
Change = fields.List(fields.Raw(allow_none=True), validate=validate.Length(equal=2))


class EnvelopeSchema(Schema):
    class Meta:
        # A newer producer may add envelope fields; old consumers keep working.
        unknown = EXCLUDE

    event_id = fields.UUID(required=True)
    event_type = fields.String(
        required=True, validate=[validate.Regexp(r"^[a-z][a-z0-9_]*$"), validate.Length(max=64)]
    )
    schema_version = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    occurred_at = fields.AwareDateTime(required=True, format="iso")
    producer = fields.String(required=True, validate=validate.Length(min=1, max=32))
    aggregate_id = fields.String(required=True, validate=validate.Length(min=1, max=64))
    sequence = fields.Integer(required=True, strict=True, validate=validate.Range(min=1))
    data = fields.Dict(keys=fields.String(), required=True)


_schema = EnvelopeSchema()
_load = loader(_schema).load


class InvalidEvent(ValueError):
    """An event body that is not a valid envelope, or whose data is invalid."""

    def __init__(self, message, errors=None):
        super().__init__(message)
        self.errors = errors or {}


def utcnow():
    return datetime.now(UTC)


def make_envelope(
    *,
    event_type,
    producer,
    aggregate_id,
    sequence,
    data,
    data_schema=None,
    schema_version=SCHEMA_VERSION,
    occurred_at=None,
    event_id=None,
    check=True,
):
    """A JSON-ready envelope, checked with its data against `data_schema` unless `check` is off."""
    if check and data_schema is not None:
        errors = data_schema.validate(data)
        if errors:
            raise InvalidEvent(f"{event_type} data is invalid: {errors}", errors)
    body = {
        "event_id": str(event_id or uuid.uuid4()),
        "event_type": event_type,
        "schema_version": schema_version,
        "occurred_at": (occurred_at or utcnow()).isoformat(timespec="microseconds"),
        "producer": producer,
        "aggregate_id": str(aggregate_id),
        "sequence": sequence,
        "data": data,
    }
    errors = _schema.validate(body) if check else None
    if errors:
        raise InvalidEvent(f"envelope is invalid: {errors}", errors)
    return body


def load_envelope(body, data_schema=None):
    """Validate an incoming body; returns the envelope with typed fields.

    `data` is loaded with `data_schema` when one is given (a consumer's
    tolerant reader: it names the fields it needs and ignores the rest).
    """
    if not isinstance(body, dict):
        raise InvalidEvent(f"event body must be an object, got {type(body).__name__}")
    try:
        envelope = _load(body)
        if data_schema is not None:
            envelope["data"] = loader(data_schema).load(envelope["data"])
    except ValidationError as exc:
        raise InvalidEvent(f"invalid event: {exc.messages}", exc.messages) from None
    return envelope
