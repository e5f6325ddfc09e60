"""Customer rules: pure functions, no Nameko, no SQL."""

import base64
import json
import re
import unicodedata

STATUSES = ("lead", "prospect", "customer", "churned")
MAX_TAGS = 50
MAX_TAG_LENGTH = 50
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_TEXT = 1000

_PHONE_NOISE = re.compile(r"[\s().\-/]")


def normalize_email(email):
    """Emails compare case-insensitively and without surrounding blanks."""
    if email is None:
        return None
    return email.strip().lower() or None


def normalize_phone(phone):
    """Digits only, keeping a leading '+'; None when it cannot be a phone number.

    '+1 (555) 010-2000' and '+15550102000' normalize alike; extensions and
    letters are not phone numbers and are rejected by the caller.
    """
    if phone is None:
        return None
    compact = _PHONE_NOISE.sub("", phone.strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact[1:] if compact.startswith("+") else compact
    if not digits.isdigit() or not 7 <= len(digits) <= 15:
        return None
    return compact


def normalize_text(value):
    """Collapse inner whitespace and trim; empty becomes None."""
    if value is None:
        return None
    collapsed = " ".join(unicodedata.normalize("NFC", value).split())
    return collapsed or None


def normalize_tags(tags):
    """Lower-case, trimmed, unique, in first-seen order."""
    seen = []
    for tag in tags or ():
        clean = normalize_text(tag)
        if clean and clean.lower() not in seen:
            seen.append(clean.lower())
    return seen


def encode_cursor(created_at, customer_id):
    raw = json.dumps([created_at.isoformat(), customer_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor):
    """(created_at iso string, id) of the last item seen; ValueError if forged."""
    padded = cursor + "=" * (-len(cursor) % 4)
    try:
        created_at, customer_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError) as exc:
        raise ValueError("invalid cursor") from exc
    if not isinstance(created_at, str) or not isinstance(customer_id, str):
        raise ValueError("invalid cursor")
    return created_at, customer_id
