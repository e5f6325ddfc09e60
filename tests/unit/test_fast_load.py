"""The fast loader gives what the marshmallow schema gives, or leaves the input to it.

Inputs are made from each schema's own fields: values of the field's type (what
producers send) or of any JSON type (what a broken producer could send), fields
left out, unknown keys added. Whatever the fast path accepts, marshmallow
accepts too and loads to the same values of the same types; whatever valid
input is made only of plain values, the fast path takes.
"""

import string
from datetime import UTC, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load, validate

from crm_common.envelope import EnvelopeSchema, InvalidEvent, load_envelope, make_envelope
from crm_common.fast_load import Decline, Loader, loader
from services.reports.service import DATA_SCHEMAS

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=6)
    | st.sampled_from(["1", "1.5", "true", "NaN", "2026-01-01T00:00:00+00:00"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner),
    max_leaves=6,
)
# Values a lenient schema might take in place of the right type (3.0 for 3, "true" for True).
NEAR = st.sampled_from(
    [True, False, 0, 1, 3, 3.0, 2.5, "3", "true", "", "x", "EUR", [], {}, None, float("nan")]
)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(minutes=-90))])


def plain(field):
    """Valid values of the field: of its own type, within its validators."""
    kind = type(field)
    checks = {type(check): check for check in field.validators}
    one_of, length = checks.get(validate.OneOf), checks.get(validate.Length)
    bounds, pattern = checks.get(validate.Range), checks.get(validate.Regexp)
    size = {}
    if length is not None:
        low = length.equal if length.equal is not None else length.min
        size = {"min_size": low or 0, "max_size": length.equal or length.max or (low or 0) + 8}
    if one_of is not None:
        return st.sampled_from(list(one_of.choices))
    if kind is fields.String:
        if pattern is not None:
            return st.from_regex(pattern.regex, fullmatch=True).filter(
                lambda text: not size or size["min_size"] <= len(text) <= size["max_size"]
            )
        return st.text(string.ascii_letters, **(size or {"max_size": 8}))
    if kind is fields.Integer:
        low, high = (bounds.min, bounds.max) if bounds is not None else (None, None)
        return st.integers(min_value=low, max_value=high if high is not None else 10**12)
    if kind is fields.Float:
        return st.floats(min_value=0, max_value=1) | st.integers(min_value=0, max_value=1)
    if kind is fields.Decimal:
        return st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str)
    if kind is fields.Boolean:
        return st.booleans()
    if kind is fields.UUID:
        return st.uuids().map(str)
    if kind is fields.AwareDateTime:
        return st.datetimes(timezones=ZONES).map(lambda moment: moment.isoformat())
    if kind is fields.List:
        return st.lists(plain(field.inner), **(size or {"max_size": 3}))
    if kind is fields.Dict:
        values = plain(field.value_field) if field.value_field is not None else JSON
        return st.dictionaries(st.text(max_size=4), values, max_size=3)
    if kind is fields.Nested:
        return body(field.schema)
    return JSON


def body(schema):
    """A plain input of `schema`: every field present with a value of its type."""
    return st.fixed_dictionaries(
        {field.data_key or name: plain(field) for name, field in schema.load_fields.items()}
    )


@st.composite
def broken(draw, schema):
    """A plain input of `schema` with a few things changed, anywhere in it: a field left
    out, a value of any JSON type or None, an unknown key."""
    value = draw(body(schema))
    for _ in range(draw(st.integers(min_value=1, max_value=2))):
        _break(draw, schema, value)
    return value


def _break(draw, schema, value):
    named = {field.data_key or name: field for name, field in schema.load_fields.items()}
    key = draw(st.sampled_from(sorted(named)))
    field = named[key]
    how = draw(st.sampled_from(["leave out", "any value", "unknown key", "inside"]))
    if how == "leave out":
        value.pop(key, None)
    elif how == "any value":
        value[key] = draw(NEAR | JSON)
    elif how == "unknown key":
        value[draw(st.sampled_from(["x", "note", "title"]))] = draw(JSON)
    elif type(field) is fields.Nested and isinstance(value.get(key), dict):
        _break(draw, field.schema, value[key])


SCHEMAS = [EnvelopeSchema(), *DATA_SCHEMAS.values()]
IDS = ["envelope", *(f"{producer}.{event_type}" for producer, event_type in DATA_SCHEMAS)]


def same(left, right):
    """Equal, of the same types all the way down (Decimal('1.0') is not Decimal('1.00'),
    an offset of +02:00 is not UTC)."""
    return left == right and repr(left) == repr(right)


def marshmallow_load(schema, data):
    try:
        return schema.load(data), None
    except ValidationError as exc:
        return None, exc.messages


PROPERTY = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_what_the_fast_path_accepts_marshmallow_loads_the_same(schema, data):
    value = data.draw(broken(schema) | JSON)
    expected, errors = marshmallow_load(schema, value)
    try:
        fast = loader(schema).fast(value)
    except Decline:
        fast = None
    else:
        assert errors is None, f"the fast path took what marshmallow refuses: {errors}"
        assert same(fast, expected)
    # Through the Loader, fast path or not, the answer is marshmallow's.
    try:
        assert same(loader(schema).load(value), expected)
    except ValidationError as exc:
        assert exc.messages == errors


@pytest.mark.parametrize("schema", SCHEMAS, ids=IDS)
@PROPERTY
@given(data=st.data())
def test_valid_plain_input_takes_the_fast_path(schema, data):
    value = data.draw(body(schema))
    expected, errors = marshmallow_load(schema, value)
    assert errors is None
    assert same(loader(schema).fast(value), expected)


def test_every_schema_of_the_reports_and_the_envelope_has_a_fast_path():
    for schema in SCHEMAS:
        assert Loader(schema).fast is not None


class WithHook(Schema):
    name = fields.String(required=True)

    @post_load
    def upper(self, data, **kwargs):
        return {"name": data["name"].upper()}


def test_a_schema_with_hooks_is_loaded_by_marshmallow():
    assert Loader(WithHook()).fast is None
    assert loader(WithHook()).load({"name": "ada"}) == {"name": "ADA"}


def test_an_integral_float_is_left_to_marshmallow_which_decides():
    """What the producers' schema would refuse (an integer 1.0), the reports' tolerant reader
    takes: the fast path declines it and marshmallow's answer stands."""
    event = make_envelope(
        event_type="satisfaction_recorded",
        producer="interactions",
        aggregate_id="t1",
        sequence=1,
        data={
            "satisfaction_id": "s1",
            "ticket_id": "t1",
            "score": 4.0,
            "channel": "email",
            "recorded_at": "2026-01-01T10:00:00+00:00",
        },
    )
    schema = DATA_SCHEMAS[("interactions", "satisfaction_recorded")]
    with pytest.raises(Decline):
        loader(schema).fast(event["data"])
    assert load_envelope(event, schema)["data"]["score"] == 4


def test_an_invalid_event_still_says_what_is_wrong():
    event = make_envelope(
        event_type="interaction_logged",
        producer="interactions",
        aggregate_id="i1",
        sequence=1,
        data={"interaction_id": "i1", "channel": "call"},
    )
    with pytest.raises(InvalidEvent) as raised:
        load_envelope(event, DATA_SCHEMAS[("interactions", "interaction_logged")])
    assert raised.value.errors == {
        "customer_id": ["Missing data for required field."],
        "occurred_at": ["Missing data for required field."],
    }
