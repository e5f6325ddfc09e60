"""Input checks that every layer applies the same way."""

import math


def nul_path(value, path=""):
    """Where a NUL character hides in `value` (a JSON-like tree), or None.

    PostgreSQL cannot store NUL in text, and no name, email or tag needs one:
    such input is refused up front rather than failing in the database.
    """
    if isinstance(value, str):
        return path or "_schema" if "\x00" in value else None
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list | tuple):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        if isinstance(key, str) and "\x00" in key:
            return path or "_schema"
        found = nul_path(item, f"{path}.{key}" if path else str(key))
        if found:
            return found
    return None


def is_finite_number(value):
    """True for ints and finite floats; NaN and infinities are not valid JSON."""
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, int)
