from datetime import UTC, datetime

import pytest

from crm_common.validation import in_utc, is_finite_number, unstorable_path


@pytest.mark.parametrize(
    ("value", "path"),
    [
        ("clean", None),
        ("a\x00b", "_schema"),
        ({"name": "Ada", "tags": ["ok", "n\x00"]}, "tags.1"),
        ({"attributes": {"k\x00": 1}}, "attributes"),
        ({"attributes": {"note": "x\x00"}}, "attributes.note"),
        ([1, None, True], None),
    ],
)
def test_unstorable_path_points_at_the_field(value, path):
    assert unstorable_path(value) == path


@pytest.mark.parametrize(
    ("value", "finite"),
    [(1, True), (1.5, True), (float("nan"), False), (float("-inf"), False), ("1", False)],
)
def test_is_finite_number(value, finite):
    assert is_finite_number(value) is finite


def test_in_utc_converts_and_refuses_moments_utc_has_no_date_for():
    moment = datetime.fromisoformat("2026-01-31T14:00:00+02:00")
    assert in_utc(moment) == moment and in_utc(moment).tzinfo == UTC
    for edge in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"):
        with pytest.raises(ValueError, match="years 1 to 9999"):
            in_utc(datetime.fromisoformat(edge))
