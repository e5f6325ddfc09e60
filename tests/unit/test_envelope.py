import uuid
from datetime import datetime

import pytest
from marshmallow import Schema, fields

from crm_common.envelope import InvalidEvent, load_envelope, make_envelope


class Thing(Schema):
    thing_id = fields.String(required=True)
    size = fields.Integer(required=True, strict=True)


def envelope(**overrides):
    body = make_envelope(
        event_type="thing_made",
        producer="things",
        aggregate_id="t-1",
        sequence=1,
        data={"thing_id": "t-1", "size": 3},
        data_schema=Thing(),
    )
    body.update(overrides)
    return body


def test_envelope_carries_every_field_of_the_contract():
    body = envelope()
    assert set(body) == {
        "event_id",
        "event_type",
        "schema_version",
        "occurred_at",
        "producer",
        "aggregate_id",
        "sequence",
        "data",
    }
    assert uuid.UUID(body["event_id"]).version == 4
    assert body["schema_version"] == 1
    assert datetime.fromisoformat(body["occurred_at"]).utcoffset().total_seconds() == 0


def test_each_envelope_gets_its_own_event_id():
    assert envelope()["event_id"] != envelope()["event_id"]


def test_producer_cannot_emit_data_that_breaks_its_schema():
    with pytest.raises(InvalidEvent) as caught:
        make_envelope(
            event_type="thing_made",
            producer="things",
            aggregate_id="t-1",
            sequence=1,
            data={"thing_id": "t-1", "size": "big"},
            data_schema=Thing(),
        )
    assert "size" in caught.value.errors


def test_sequence_starts_at_one():
    with pytest.raises(InvalidEvent):
        make_envelope(
            event_type="thing_made", producer="things", aggregate_id="t", sequence=0, data={}
        )


def test_consumer_loads_typed_fields():
    loaded = load_envelope(envelope(), Thing())
    assert isinstance(loaded["event_id"], uuid.UUID)
    assert isinstance(loaded["occurred_at"], datetime)
    assert loaded["data"] == {"thing_id": "t-1", "size": 3}


@pytest.mark.parametrize(
    "broken",
    [
        {"event_id": "not-a-uuid"},
        {"sequence": "7"},
        {"sequence": -1},
        {"occurred_at": "2026-01-31T12:00:00"},  # no zone
        {"event_type": "Thing Made"},
        {"data": ["not", "an", "object"]},
        {"schema_version": 0},
        {"producer": "p" * 33},  # longer than any consumer stores
        {"aggregate_id": "a" * 65},
    ],
)
def test_consumer_rejects_a_broken_envelope(broken):
    with pytest.raises(InvalidEvent):
        load_envelope(envelope(**broken))


def test_consumer_rejects_a_body_that_is_not_an_object():
    with pytest.raises(InvalidEvent):
        load_envelope("thing_made")


def test_consumer_tolerates_fields_added_by_newer_producers():
    body = envelope(trace_id="abc")
    body["data"]["colour"] = "red"

    class SizeOnly(Schema):
        class Meta:
            unknown = "exclude"

        size = fields.Integer(required=True)

    loaded = load_envelope(body, SizeOnly())
    assert loaded["data"] == {"size": 3}
    assert "trace_id" not in loaded
