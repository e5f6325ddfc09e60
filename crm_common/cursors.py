"""Opaque list cursors: the position of the last item a page gave out.

A cursor is URL-safe base64 of a JSON pair. Lists ordered by (time, id)
use `encode_position` / `decode_position`; anything a client forged or
mangled is a ValueError, which services answer as a 400 on `cursor`.
"""

import base64
import json
import uuid
from datetime import datetime

from crm_common.validation import in_utc, storable


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
        if moment.tzinfo is None:
            raise ValueError("naive time")
        # A forged offset at the calendar's edge has no UTC date at all.
        return in_utc(moment), record_id
    except (ValueError, OverflowError):
        raise ValueError("invalid cursor") from None


# A timeline merges records of several kinds: its order is (time, kind, id), newest
# first, and its cursor names all three. Any caller merging timelines of several
# services (the gateway) uses the same marks, with kinds of its own.
MAX_KIND_LENGTH = 32


def encode_mark(at, kind, record_id):
    return pack([[at.isoformat(), kind], record_id])


def decode_mark(cursor):
    """(aware UTC datetime, kind, id) of a timeline cursor; ValueError if forged."""
    head, record_id = unpack(cursor)
    if not (isinstance(head, list) and len(head) == 2 and all(isinstance(v, str) for v in head)):
        raise ValueError("invalid cursor")
    at, kind = head
    if not kind or len(kind) > MAX_KIND_LENGTH or not kind.isidentifier():
        raise ValueError("invalid cursor")
    moment, record_id = decode_position(pack([at, record_id]))
    return moment, kind, record_id
