"""List cursors come back from clients: anything forged is a ValueError, never a crash."""

import uuid
from datetime import UTC, datetime

import pytest

from crm_common import cursors

ITEM = str(uuid.uuid4())
# Valid ISO 8601 times whose offset pushes them out of the calendar in UTC.
EDGES = ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]


def test_positions_and_marks_round_trip_in_utc():
    at = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)
    assert cursors.decode_position(cursors.encode_position(at, ITEM)) == (at, ITEM)
    assert cursors.decode_mark(cursors.encode_mark(at, "ticket", ITEM)) == (at, "ticket", ITEM)


@pytest.mark.parametrize("at", EDGES)
def test_a_position_at_the_edge_of_the_calendar_is_an_invalid_cursor(at):
    with pytest.raises(ValueError, match="invalid cursor"):
        cursors.decode_position(cursors.pack([at, ITEM]))


@pytest.mark.parametrize("at", EDGES)
def test_a_timeline_mark_at_the_edge_of_the_calendar_is_an_invalid_cursor(at):
    with pytest.raises(ValueError, match="invalid cursor"):
        cursors.decode_mark(cursors.pack([[at, "ticket"], ITEM]))
