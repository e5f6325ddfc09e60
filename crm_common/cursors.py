"""Opaque list cursors: the position of the last item a page gave out.

A cursor is URL-safe base64 of a JSON pair. Lists ordered by (time, id)
use `encode_position` / `decode_position`; anything a client forged or
mangled is a ValueError, which services answer as a 400 on `cursor`.
"""

import base64
import json
import uuid
from datetime import UTC, datetime

from crm_common.validation import storable


def pack(pair):
    return base64.urlsafe_b64encode(json.dumps(pair).encode()).decode().rstrip("=")


def unpack(cursor):
    """The two values a cursor carries; ValueError for anything `pack` did not make."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        first, second = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(second, str) or not storable(second):
        raise ValueError("invalid cursor")
    return first, second


def encode_position(at, record_id):
    return pack([at.isoformat(), record_id])


def decode_position(cursor):
    """(aware UTC datetime, id) of the last item seen; ValueError if forged."""
    at, record_id = unpack(cursor)
    if not isinstance(at, str):
        raise ValueError("invalid cursor")
    uuid.UUID(record_id)  # ValueError for anything but an id a service gave out
    try:
        moment = datetime.fromisoformat(at)
    except (ValueError, OverflowError):
        raise ValueError("invalid cursor") from None
    if moment.tzinfo is None:
        raise ValueError("invalid cursor")
    return moment.astimezone(UTC), record_id
