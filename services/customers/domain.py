"""Customer rules: pure functions, no Nameko, no SQL."""

import functools
import re
import unicodedata
import zlib
from difflib import SequenceMatcher

from crm_common import cursors

STATUSES = ("lead", "prospect", "customer", "churned")
MAX_TAGS = 50
MAX_TAG_LENGTH = 50
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_TEXT = 1000
MAX_MERGE = 50

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


def encode_key_cursor(kind, key):
    return cursors.pack([kind, key])


def decode_key_cursor(cursor):
    """(kind, key) of a duplicates page's cursor; ValueError if it was not given out."""
    kind, key = cursors.unpack(cursor)
    if not isinstance(kind, int) or isinstance(kind, bool) or kind < 0:
        raise ValueError("invalid cursor")
    return kind, key


# --- search and matching keys -------------------------------------------------------------

_WORD = re.compile(r"[^\W_]+")
_PHONE_QUERY = re.compile(r"^\+?[\d\s().\-/]+$")
_COMPANY_SUFFIXES = {"inc", "ltd", "llc", "gmbh", "plc", "sa", "ag", "bv", "co", "corp", "limited"}
MAX_TERM_LENGTH = 64
MAX_KEY_LENGTH = 200
MIN_PHONE_TAIL = 7
PROFILE_FIELDS = ("name", "email", "phone", "company", "owner", "status", "tags", "attributes")


def created_data(customer_id, profile, created_at):
    """The data of customer_created for a new customer's profile."""
    return {"customer_id": customer_id, "created_at": created_at.isoformat(), **profile}


def new_profile(**fields):
    """A profile with every field, the ones not given at their defaults."""
    return {
        "email": None, "phone": None, "company": None, "owner": None,
        "status": "lead", "tags": [], "attributes": {}, **fields,
    }  # fmt: skip


@functools.lru_cache(maxsize=65536)
def fold(text):
    """Case- and accent-insensitive form: 'Zoë  Ñúñez' and 'zoe nunez' fold alike."""
    if not text:
        return ""
    if text.isascii():  # most text: nothing to decompose
        return " ".join(text.lower().split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(stripped.casefold().split())


@functools.lru_cache(maxsize=65536)
def _words(text):
    return tuple(_WORD.findall(fold(text)))


def words(text):
    return list(_words(text)) if text else []


def search_terms(name, email, phone, company):
    """Words a customer is found by: each query word must begin one of them."""
    terms = set(words(name)) | set(words(company)) | email_terms(email)
    if phone:
        digits = phone.lstrip("+")
        # Every tail of 7 digits or more: found with or without country or trunk code.
        terms.update(digits[start:] for start in range(len(digits) - MIN_PHONE_TAIL + 1))
    return {term[:MAX_TERM_LENGTH] for term in terms if term}


_DOMAIN = re.compile(r"^[^\W_][\w-]*(\.[\w-]+)+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_email(text):
    return bool(_EMAIL.match(text))


def email_terms(email):
    """The words of the local part, the domain whole, and its first label.

    'ada.king@mail.example.com' is found by 'ada', 'king', 'mail.example.com'
    and 'mail'; not by 'com', which nearly every customer shares.
    """
    if not email or "@" not in email:
        return set(words(email))
    email = email.strip(".@")
    local, _, domain_name = email.rpartition("@")
    labels = [label for label in fold(domain_name).split(".") if label]
    # Every domain ending but the bare top level: mail.example.com, example.com.
    suffixes = {".".join(labels[start:]) for start in range(len(labels) - 1)}
    return set(words(local)) | suffixes | set(labels[:-1])


def query_terms(query):
    """The words of a search; a phone-looking query is one run of digits."""
    if _PHONE_QUERY.match(query.strip()):
        digits = "".join(char for char in query if char.isdigit())
        if len(digits) >= 3:
            return [digits[:MAX_TERM_LENGTH]]
    found = []
    for part in query.split():
        if "@" in part:
            found.extend(sorted(email_terms(part)))
        elif _DOMAIN.match(part):  # 'example.com' is looked up as written
            found.append(fold(part))
        else:
            found.extend(words(part))
    return [term[:MAX_TERM_LENGTH] for term in dict.fromkeys(found) if term]


def term_end(term):
    """The smallest text above every text that begins with `term` (for a range scan)."""
    return term + "\U0010ffff"


@functools.lru_cache(maxsize=65536)
def company_key(company):
    """A company compared without case, accents, punctuation or legal suffix."""
    tokens = words(company)
    while len(tokens) > 1 and tokens[-1] in _COMPANY_SUFFIXES:
        tokens.pop()
    return " ".join(tokens)[:MAX_KEY_LENGTH] or None


def name_key(name):
    return " ".join(sorted(words(name))) or None


@functools.lru_cache(maxsize=65536)
def name_block(name, company):
    """Blocking key for 'similar name in the same company': company + initials of the name's words.

    'Jon Smith' and 'Smith, John' at 'ACME Inc.' share 'acme|js', so a scan
    compares them without comparing every pair of customers.
    """
    key = company_key(company)
    initials = "".join(word[0] for word in sorted(words(name)))
    return f"{key}|{initials}"[:MAX_KEY_LENGTH] if key and initials else None


# --- duplicates ----------------------------------------------------------------------------

DUPLICATE_THRESHOLD = 0.8
NAME_SIMILARITY = 0.85
WEIGHTS = {"email": 0.95, "phone": 0.85, "name+company": 0.8}


def similar_names(a, b):
    """Whether two names are alike enough (similarity >= NAME_SIMILARITY), word order ignored."""
    left, right = name_key(a) or "", name_key(b) or ""
    if not left or not right:
        return False
    matcher = SequenceMatcher(None, left, right)
    # The cheap upper bounds rule out most pairs before the real ratio.
    return (
        matcher.real_quick_ratio() >= NAME_SIMILARITY
        and matcher.quick_ratio() >= NAME_SIMILARITY
        and matcher.ratio() >= NAME_SIMILARITY
    )


def match(a, b):
    """(score, matched fields) for two profiles (dicts with name, email, phone, company).

    Each matching field is evidence; together they add up like independent
    signals: 1 - product of (1 - weight). No match scores 0.
    """
    matched = []
    if a.get("email") and a.get("email") == b.get("email"):
        matched.append("email")
    if a.get("phone") and a.get("phone") == b.get("phone"):
        matched.append("phone")
    same_company = company_key(a.get("company")) and company_key(a.get("company")) == company_key(
        b.get("company")
    )
    if same_company and similar_names(a.get("name"), b.get("name")):
        matched.append("name+company")
    doubt = 1.0
    for field in matched:
        doubt *= 1 - WEIGHTS[field]
    return round(1 - doubt, 3), matched


def best_match(profile, candidates):
    """The likeliest duplicate among `candidates`, if likely enough: (candidate, score, fields)."""
    best = None
    for candidate in candidates:
        score, fields = match(profile, candidate)
        if score >= DUPLICATE_THRESHOLD and (best is None or score > best[1]):
            best = (candidate, score, fields)
    return best


# --- changes and merges --------------------------------------------------------------------


def changes(before, after):
    """{field: [old, new]} for the profile fields that differ."""
    return {
        field: [before.get(field), after[field]]
        for field in PROFILE_FIELDS
        if field in after and before.get(field) != after[field]
    }


def merged_profile(survivor, others):
    """The survivor after a merge: it keeps what it has and takes what it lacks.

    Empty fields are filled from the others in the order given; tags are
    united; attributes the survivor lacks are added (the first other wins).
    """
    result = {field: survivor[field] for field in PROFILE_FIELDS}
    for field in ("email", "phone", "company", "owner"):
        if not result[field]:
            result[field] = next((other[field] for other in others if other[field]), None)
    tags = list(result["tags"])
    for other in others:
        tags.extend(tag for tag in other["tags"] if tag not in tags)
    result["tags"] = tags[:MAX_TAGS]
    attributes = dict(survivor["attributes"])
    for other in others:
        for key, value in other["attributes"].items():
            if len(attributes) >= MAX_ATTRIBUTES:
                break
            attributes.setdefault(key, value)
    result["attributes"] = attributes
    return result


ERASED_NAME = "Erased customer"


def erased_profile():
    """What is kept of a customer after erasure: nothing that identifies a person."""
    return {
        "name": ERASED_NAME,
        "email": None,
        "phone": None,
        "company": None,
        "tags": [],
        "attributes": {},
    }


PERSONAL_FIELDS = ("name", "email", "phone", "company", "tags", "attributes")


def scrubbed_event(body):
    """An event of an erased customer, with its personal data replaced as in the profile."""
    data = dict(body["data"])
    erased = erased_profile()
    for field in PERSONAL_FIELDS:
        if field in data:
            data[field] = erased[field]
    if "changes" in data:
        data["changes"] = {
            field: ([None, None] if field in PERSONAL_FIELDS else change)
            for field, change in data["changes"].items()
        }
    return {**body, "data": data}


def bucket(key, buckets):
    """A stable small number for `key`: writers of one key meet on its bucket."""
    return zlib.crc32(key.encode()) % buckets
