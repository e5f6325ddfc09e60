"""The gateway's request schemas refuse what would fail deeper in, naming the field."""

import pytest
from marshmallow import ValidationError

from gateway import schemas


@pytest.mark.parametrize(
    ("sent", "read"),
    [
        ("2026-01-31T12:00:00+01:00", "2026-01-31T12:00:00+01:00"),
        ("2026-01-31T12:00:00 01:00", "2026-01-31T12:00:00+01:00"),  # "+" unencoded in a query
        ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00+00:00"),
    ],
)
def test_as_of_is_read_with_its_offset(sent, read):
    assert schemas.FunnelReportQuery().load({"as_of": sent})["as_of"].isoformat() == read


@pytest.mark.parametrize("sent", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("schema", [schemas.FunnelReportQuery, schemas.SegmentsReportQuery])
def test_an_as_of_utc_has_no_date_for_is_a_validation_error(schema, sent):
    with pytest.raises(ValidationError) as caught:
        schema().load({"as_of": sent})
    assert list(caught.value.messages) == ["as_of"]
