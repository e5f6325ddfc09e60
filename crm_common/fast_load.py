"""Loading with a marshmallow schema, fast: a loader made from the schema once.

`Schema.load` costs hundreds of microseconds for an event envelope and its data
(an error store, a closure and a handful of calls per field), most of a
rebuild's time. `loader(schema)` reads the schema's fields once and answers a
function that loads the plain, valid case, the one that every event but a
broken one takes, in a few plain Python steps per field.

The schema stays the definition: the fast path only takes what it is sure the
schema takes (exact types: a `str` for a String, an `int` for an Integer, ...)
and gives what the schema would give. Anything else (a missing required field,
a value of another type, a validator that refuses it, a field or hook it does
not know) goes to `schema.load`, which answers or raises its own
ValidationError as before.
"""

import datetime as dt
import decimal
import math
import uuid
import weakref

from marshmallow import EXCLUDE, RAISE, ValidationError, fields
from marshmallow.utils import missing


class Decline(Exception):
    """The fast path does not take this input: the schema decides."""


def _field_loader(field):
    """A function of a present value (never missing) that gives what `field.deserialize`
    gives, or raises Decline."""
    convert = _converter(field)
    if convert is None or field.pre_load or field.post_load:
        return _generic(field)
    validators = tuple(field.validators)
    allow_none = field.allow_none
    if not validators and convert is not _raw:
        # Every conversion but Raw's declines None: a field that refuses it needs no check.
        return _none_or(convert) if allow_none else convert

    def load(value):
        if value is None:
            if allow_none:
                return None
            raise Decline
        output = convert(value)
        for validator in validators:
            try:
                if validator(output) is False:
                    raise Decline
            except ValidationError:
                raise Decline from None
        return output

    return load


def _none_or(convert):
    def load(value):
        return None if value is None else convert(value)

    return load


def _generic(field):
    """The field's own deserialize, for a field the fast path does not know."""

    def load(value):
        try:
            return field.deserialize(value)
        except ValidationError:
            raise Decline from None

    return load


def _converter(field):
    """The conversion of a present, non-None value of `field`'s exact type, or None when
    the fast path does not know the field (it then uses the field's own deserialize)."""
    kind = type(field)
    if kind is fields.String:
        return _string
    if kind is fields.Integer:
        return _integer
    if kind is fields.Float and not field.allow_nan:
        return _float
    if kind is fields.Decimal and not field.allow_nan and field.places is None:
        return _decimal
    if kind is fields.Boolean and True in field.truthy and False in field.falsy:
        return _boolean
    if kind is fields.UUID:
        return _uuid
    if kind is fields.AwareDateTime and field.format in ("iso", "iso8601"):
        return _aware_datetime
    if kind is fields.Raw:
        return _raw
    if kind is fields.List:
        return _list(_field_loader(field.inner))
    if kind is fields.Dict:
        return _dict(field)
    if kind is fields.Nested and not field.many and field.unknown is None:
        return _compile(field.schema)
    return None


def _string(value):
    if type(value) is str:
        return value
    raise Decline


def _integer(value):
    # An int (never a bool): what a strict and a lenient Integer both take as it is.
    if type(value) is int:
        return value
    raise Decline


def _float(value):
    if type(value) is float or type(value) is int:
        try:
            number = float(value)
        except OverflowError:
            raise Decline from None
        if math.isfinite(number):
            return number
    raise Decline


def _decimal(value):
    if type(value) is str or type(value) is int:
        try:
            number = decimal.Decimal(str(value))
        except (decimal.InvalidOperation, ValueError):
            raise Decline from None
        if number.is_finite():
            return number
    raise Decline


def _boolean(value):
    if value is True or value is False:
        return value
    raise Decline


def _uuid(value):
    if type(value) is str:
        try:
            return uuid.UUID(value)
        except ValueError:
            raise Decline from None
    raise Decline


def _aware_datetime(value):
    if type(value) is str:
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise Decline from None
        if moment.tzinfo is not None and moment.tzinfo.utcoffset(moment) is not None:
            return moment
    raise Decline


def _raw(value):
    return value


def _list(load_item):
    def load(value):
        if type(value) is not list:
            raise Decline
        return [load_item(item) for item in value]

    return load


def _dict(field):
    load_key = _field_loader(field.key_field) if field.key_field is not None else _raw
    load_value = _field_loader(field.value_field) if field.value_field is not None else _raw
    if load_key is _string and load_value is _raw:
        # Text keys, any values (an event's `data` before its own schema loads it).
        def load_text_keys(value):
            if type(value) is not dict:
                raise Decline
            for key in value:
                if type(key) is not str:
                    raise Decline
            return dict(value)

        return load_text_keys

    def load(value):
        if type(value) is not dict:
            raise Decline
        return {load_key(key): load_value(item) for key, item in value.items()}

    return load


def _compile(schema):
    """A function of the input that gives what `schema.load` gives, or raises Decline;
    None when the schema has what the fast path does not do (hooks, `many`, partial
    loading, unknown fields kept)."""
    if (
        any(schema._hooks.values())
        or schema.many
        or schema.partial
        or schema.unknown not in (EXCLUDE, RAISE)
    ):
        return None
    steps = []
    for name, field in schema.load_fields.items():
        if field.attribute is not None and "." in field.attribute:
            return None
        default = field.load_default
        steps.append(
            (
                field.data_key if field.data_key is not None else name,
                field.attribute or name,
                _field_loader(field),
                field.required,
                default,
                callable(default),
            )
        )
    steps = tuple(steps)
    known = frozenset(key for key, *_ in steps)
    strict = schema.unknown == RAISE

    def load(data):
        if type(data) is not dict:
            raise Decline
        if strict and not known.issuperset(data):
            raise Decline
        output = {}
        for key, attribute, load_value, required, default, default_is_callable in steps:
            value = data.get(key, missing)
            if value is missing:
                if required:
                    raise Decline
                value = default() if default_is_callable else default
                if value is not missing:
                    output[attribute] = value
                continue
            output[attribute] = load_value(value)
        return output

    return load


class Loader:
    """`load(data)`: what `schema.load(data)` answers or raises, on the fast path when
    the input is plain and valid."""

    def __init__(self, schema):
        self.schema = schema
        self.fast = _compile(schema)

    def load(self, data):
        if self.fast is not None:
            try:
                return self.fast(data)
            except Decline:
                pass
        return self.schema.load(data)


_LOADERS = weakref.WeakKeyDictionary()


def loader(schema):
    """The Loader of a schema instance, made on first use and kept while the schema lives."""
    found = _LOADERS.get(schema)
    if found is None:
        found = _LOADERS[schema] = Loader(schema)
    return found
