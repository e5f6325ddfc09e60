"""Dead letters: events a consumer could not apply, kept with their error.

Every consuming service has a `dead_letters` table in its own database. An
event its handler cannot apply is written there, with the error, in place
of being dropped or requeued forever:

- an invalid envelope, or an error that fails the same way every time (the
  database refuses the data, a KeyError on odd data): `dead` at once;
- an error that may pass (a lost race, a deadlock, anything unknown):
  `retrying`, applied again by the service's `retry_dead_letters` timer
  after a backoff (CRM_EVENT_RETRY_SECONDS, doubling), and `dead` after
  CRM_EVENT_MAX_ATTEMPTS tries;
- the database itself away: nothing is written (it cannot be), the message
  goes back to the queue after a pause and is tried again, without limit.
  An attempt counts only when the database took the write recording it, so
  an outage never uses up an event's tries.

The message is acknowledged once its entry is committed. An admin lists the
entries and replays them (RPCs below, `crm dead-letters`, the gateway's
`/api/v1/admin/dead-letters`): a replay runs the same handler again, in the
service that failed it, through the same de-duplicating inbox, and removes
the entry, or keeps it with the new error.

Why a table and not a RabbitMQ dead-letter exchange: the decision and the
record share the consumer's database, so recording is one local commit,
safe whatever the broker does meanwhile (down: the unacknowledged message
comes back and finds its entry; two instances: one entry per event and
handler, retries claimed with a conditional update). Waiting retries sit in
the table, not in the queue, so they never hold the messages behind them.
And nameko's durable queues keep their arguments: adding
`x-dead-letter-exchange` to an existing queue fails its redeclaration
(PRECONDITION_FAILED), which would break every upgrade.
"""

import hashlib
import json
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from marshmallow import RAISE, Schema, ValidationError, fields, validate
from sqlalchemy import (
    JSON,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    delete,
    func,
    or_,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Mapped, declared_attr, mapped_column
from sqlalchemy.orm.exc import StaleDataError

from crm_common import cursors
from crm_common.db import UTCDateTime
from crm_common.envelope import InvalidEvent, utcnow
from crm_common.errors import NotFound, ValidationFailed

log = logging.getLogger(__name__)

RETRYING, DEAD = "retrying", "dead"
STATUSES = (RETRYING, DEAD)
# Why an entry is there: not an event at all, an error that never passes, one that may.
INVALID, PERMANENT, TRANSIENT = "invalid", "permanent", "transient"

MAX_BACKOFF_SECONDS = 300
# A claimed retry or replay is another instance's again after this long (its runner died).
CLAIM_SECONDS = 60
ERROR_LENGTH = 2000
RETRY_BATCH = 50


def classify(exc):
    """INVALID, PERMANENT or TRANSIENT: what retrying the failure could change."""
    if isinstance(exc, (InvalidEvent, ValidationError)):
        return INVALID
    # Races, deadlocks, a versioned row changed meanwhile, the connection dropped.
    if isinstance(exc, (OperationalError, InterfaceError, IntegrityError, StaleDataError)):
        return TRANSIENT
    # The rest of SQLAlchemy's errors (DataError, ProgrammingError, a value its
    # column type refuses) and programming errors fail the same way on the same
    # event in the same code: retrying only delays the admin who has to look.
    if isinstance(exc, (SQLAlchemyError, LookupError, TypeError, ValueError, AttributeError)):
        return PERMANENT
    if isinstance(exc, ArithmeticError):
        return PERMANENT
    return TRANSIENT


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    retry_seconds: float

    @classmethod
    def from_config(cls, config):
        return cls(config["CRM_EVENT_MAX_ATTEMPTS"], config["CRM_EVENT_RETRY_SECONDS"])

    def decide(self, kind, attempts, now):
        """(status, next_attempt_at) after `attempts` failed tries ending in a `kind` error."""
        if kind != TRANSIENT or attempts >= self.max_attempts:
            return DEAD, None
        delay = min(self.retry_seconds * 2 ** (attempts - 1), MAX_BACKOFF_SECONDS)
        return RETRYING, now + timedelta(seconds=delay)


@dataclass(frozen=True)
class Consumer:
    """Which handler of the service failed an event (its method name is its queue's)."""

    handler: str | None
    producer: str | None
    event_type: str | None


class DeadLetterMixin:
    """Columns of a consumer's `dead_letters` table; mix into its own Base."""

    __tablename__ = "dead_letters"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    # The event_id, or a hash of a body that has none: one entry per message and handler.
    message_key: Mapped[str] = mapped_column(String(64))
    handler: Mapped[str | None] = mapped_column(String(100))
    producer: Mapped[str | None] = mapped_column(String(32))
    event_type: Mapped[str | None] = mapped_column(String(64))
    event_id: Mapped[str | None] = mapped_column(String(36))
    aggregate_id: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[object] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    first_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_failed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    @declared_attr.directive
    def __table_args__(cls):
        return (
            UniqueConstraint("handler", "message_key"),
            Index("ix_dead_letters_status_next_attempt_at", "status", "next_attempt_at"),
            Index("ix_dead_letters_first_failed_at_id", "first_failed_at", "id"),
        )


def _text(value, length):
    """`value` for a text column, if it is text that fits (PostgreSQL keeps no NUL in text)."""
    if isinstance(value, str) and 0 < len(value) <= length and "\x00" not in value:
        return value
    return None


def storable(body):
    """`body` as the `body` column keeps it: a number JSON has no word for (NaN, an
    infinity, which the broker's JSON decoder takes and PostgreSQL's json refuses) as its
    name in text."""
    try:
        json.dumps(body, allow_nan=False)
    except ValueError:
        return _finite(body)
    return body


def _finite(value):
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


def message_key(body):
    event_id = body.get("event_id") if isinstance(body, dict) else None
    try:
        return str(uuid.UUID(str(event_id))) if event_id else _digest(body)
    except ValueError:
        return _digest(body)


def _digest(body):
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


def describe(exc):
    return f"{type(exc).__name__}: {exc}".replace("\x00", "\\x00")[:ERROR_LENGTH]


def record_failure(session, model, body, consumer, exc, policy, now=None):
    """Write (or update) the entry of a message its consumer failed; commits.

    Answers the entry. A database error raised from here means the database
    is away: the caller sends the message back to the queue.
    """
    now = now or utcnow()
    key = message_key(body)
    kind = classify(exc)
    for _ in range(2):  # another instance may insert the same entry first
        letter = session.scalars(
            select(model).where(model.handler == consumer.handler, model.message_key == key)
        ).one_or_none()
        if letter is None:
            fields_of = body if isinstance(body, dict) else {}
            letter = model(
                id=str(uuid.uuid4()),
                message_key=key,
                handler=consumer.handler,
                producer=consumer.producer or _text(fields_of.get("producer"), 32),
                event_type=consumer.event_type or _text(fields_of.get("event_type"), 64),
                event_id=key if len(key) == 36 else None,
                aggregate_id=_text(fields_of.get("aggregate_id"), 64),
                body=storable(body),
                attempts=0,
                first_failed_at=now,
            )
            session.add(letter)
        _failed(letter, exc, kind, policy.decide(kind, letter.attempts + 1, now), now)
        try:
            session.commit()
            return letter
        except IntegrityError:
            session.rollback()
    raise IntegrityError("INSERT INTO dead_letters", {}, Exception("entry keeps changing"))


def _failed(letter, exc, kind, decision, now):
    letter.attempts += 1
    letter.kind = kind
    letter.error = describe(exc)
    letter.last_failed_at = now
    letter.status, letter.next_attempt_at = decision
    letter.claimed_until = None


def claim(session, model, letter_id, now=None, statuses=STATUSES):
    """Take the entry for one run (a retry or a replay); None if another holds it."""
    now = now or utcnow()
    result = session.execute(
        sql_update(model)
        .where(
            model.id == letter_id,
            model.status.in_(statuses),
            unclaimed(model, now),
        )
        .values(claimed_until=now + timedelta(seconds=CLAIM_SECONDS))
        .execution_options(synchronize_session=False)
    )
    session.commit()
    if result.rowcount != 1:
        return None
    letter = session.get(model, letter_id, populate_existing=True)
    # End the read: a SQLite reader that another writer overtakes can no longer write.
    session.commit()
    return letter


def unclaimed(model, now):
    """Entries no retry or replay holds now (none ever did, or its runner died)."""
    return or_(model.claimed_until.is_(None), model.claimed_until < now)


def discard(session, model, letter_id, now=None):
    """Remove the entry unless a retry or replay holds it; commits. Answers whether it went:
    a run that lost its entry midway could not record how it ended."""
    now = now or utcnow()
    result = session.execute(delete(model).where(model.id == letter_id, unclaimed(model, now)))
    session.commit()
    return result.rowcount == 1


def due(session, model, now=None, limit=RETRY_BATCH):
    """Ids of the entries whose next automatic try is due."""
    now = now or utcnow()
    return session.scalars(
        select(model.id)
        .where(
            model.status == RETRYING,
            model.next_attempt_at <= now,
            unclaimed(model, now),
        )
        .order_by(model.next_attempt_at)
        .limit(limit)
    ).all()


def settle(session, model, letter_id, exc, policy, automatic, now=None):
    """After a run: remove the entry, or keep it with the new error; commits.

    A replay an admin asked for that fails is dead again (it asked once); an
    automatic retry follows the policy. Answers the entry, or None if removed (or
    already gone: discarded once the run's claim had run out).
    """
    now = now or utcnow()
    if exc is None:
        session.execute(delete(model).where(model.id == letter_id))
        session.commit()
        return None
    letter = session.get(model, letter_id, populate_existing=True)
    if letter is None:
        # Discarded after the run's claim ran out: nothing is left to record the failure on.
        log.warning(
            "dead letter gone before its failed run was recorded",
            extra={"dead_letter_id": letter_id, "error": describe(exc)},
        )
        session.commit()
        return None
    kind = classify(exc)
    decision = policy.decide(kind, letter.attempts + 1, now) if automatic else (DEAD, None)
    _failed(letter, exc, kind, decision, now)
    session.commit()
    return letter


def shown(letter, with_body=True):
    """An entry as the RPCs answer it."""
    answer = {
        "id": letter.id,
        "status": letter.status,
        "kind": letter.kind,
        "handler": letter.handler,
        "producer": letter.producer,
        "event_type": letter.event_type,
        "event_id": letter.event_id,
        "aggregate_id": letter.aggregate_id,
        "error": letter.error,
        "attempts": letter.attempts,
        "first_failed_at": letter.first_failed_at.isoformat(),
        "last_failed_at": letter.last_failed_at.isoformat(),
        "next_attempt_at": letter.next_attempt_at.isoformat() if letter.next_attempt_at else None,
    }
    if with_body:
        answer["body"] = letter.body
    return answer


class DeadLetterQuery(Schema):
    """Filters and paging of a list of dead letters (the gateway reads it too)."""

    class Meta:
        unknown = RAISE

    status = fields.String(validate=validate.OneOf(STATUSES))
    event_type = fields.String(validate=validate.Length(min=1, max=64))
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))
    cursor = fields.String(validate=validate.Length(min=1, max=512))


def load_query(query):
    try:
        return DeadLetterQuery().load(query or {})
    except ValidationError as exc:
        raise ValidationFailed("Invalid dead-letter query.", exc.normalized_messages()) from None


def page(session, model, query):
    """Entries oldest first, without their bodies; `next_cursor` resumes."""
    params = load_query(query)
    statement = select(model).order_by(model.first_failed_at, model.id)
    if params.get("status"):
        statement = statement.where(model.status == params["status"])
    if params.get("event_type"):
        statement = statement.where(model.event_type == params["event_type"])
    if params.get("cursor"):
        try:
            at, letter_id = cursors.decode_position(params["cursor"])
        except ValueError:
            raise ValidationFailed("Invalid cursor.", {"cursor": ["Invalid cursor."]}) from None
        statement = statement.where(
            or_(
                model.first_failed_at > at,
                (model.first_failed_at == at) & (model.id > letter_id),
            )
        )
    rows = session.scalars(statement.limit(params["limit"] + 1)).all()
    items = rows[: params["limit"]]
    next_cursor = None
    if len(rows) > params["limit"]:
        next_cursor = cursors.encode_position(items[-1].first_failed_at, items[-1].id)
    return {"items": [shown(row, with_body=False) for row in items], "next_cursor": next_cursor}


def get(session, model, letter_id):
    try:
        letter = session.get(model, str(uuid.UUID(str(letter_id))))
    except ValueError:
        letter = None
    if letter is None:
        raise NotFound(f"No dead letter {letter_id}.", details={"id": str(letter_id)})
    return letter


def counts(session, model):
    """How many entries wait, per status, and when the oldest failed."""
    rows = session.execute(
        select(model.status, func.count(), func.min(model.first_failed_at)).group_by(model.status)
    ).all()
    answer = {status: 0 for status in STATUSES}
    answer.update((status, number) for status, number, _ in rows)
    oldest = min((at for _, _, at in rows if at is not None), default=None)
    answer["oldest_failed_at"] = oldest.isoformat() if oldest else None
    return answer
