"""Input checks that every layer applies the same way."""

import math
from datetime import UTC

from marshmallow import ValidationError, fields

UNSTORABLE = "Must not contain NUL characters or unpaired surrogates."
NO_UTC_DATE = "Out of range: in UTC this time falls before year 1 or after year 9999."


def storable(text):
    """False for text no database stores: NUL (PostgreSQL refuses it) or a lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_path(value, path=""):
    """Where text that cannot be stored hides in `value` (a JSON-like tree), or None.

    No name, email or tag needs such characters: input holding them is
    refused up front rather than failing in the database.
    """
    if isinstance(value, str):
        return None if storable(value) else path or "_schema"
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and not storable(key):
            return path or "_schema"
        found = unstorable_path(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def is_finite_number(value):
    """True for ints and finite floats; NaN and infinities are not valid JSON."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)


def in_utc(moment):
    """The aware datetime `moment` in UTC; ValueError where UTC has no such date.

    An offset can push a moment at the edge of the calendar out of it:
    0001-01-01T00:00:00+14:00 falls in year 0 in UTC, and
    9999-12-31T23:59:59-14:00 in year 10000. Both are valid ISO 8601 input.
    """
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} has no UTC date within years 1 to 9999") from None


class UtcMoment(fields.AwareDateTime):
    """An ISO 8601 time with its zone, refused where UTC has no date for it: the services
    compare and store times in UTC."""

    def __init__(self, **kwargs):
        super().__init__(format="iso", **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        moment = super()._deserialize(value, attr, data, **kwargs)
        try:
            in_utc(moment)
        except ValueError:
            raise ValidationError(NO_UTC_DATE) from None
        return moment
