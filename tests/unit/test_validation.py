import pytest

from crm_common.validation import is_finite_number, unstorable_path


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
