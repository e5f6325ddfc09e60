"""Reading producers' event logs, for what the broker could not deliver.

The broker drops events published before a subscriber's queue exists (the
first start of reports, a queue deleted by hand). So reports also follow each
producer's log through `events_since`, from a cursor they keep, and apply
what they find through the same inbox as live events: anything already
applied is skipped by its `event_id`.
"""

import logging
import time

import eventlet
from sqlalchemy.exc import SQLAlchemyError

from crm_common.envelope import utcnow
from services.reports.models import ProducerCursor

log = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_PAGES_PER_RUN = 20
FETCH_TIMEOUT_SECONDS = 5


class Schedule:
    """Due at once, then every `interval` seconds (state kept across workers)."""

    def __init__(self, interval):
        self.interval = interval
        self.next_run = 0.0

    def due(self):
        now = time.monotonic()
        if now < self.next_run:
            return False
        self.next_run = now + self.interval
        return True


def follow_log(producer, fetch, apply, session_factory):
    """Apply the producer's events after the stored cursor; returns how many were read.

    `fetch(cursor)` answers a page of `events_since`; `apply(body)` applies one
    event idempotently. Stops quietly when the producer does not answer.
    """
    cursor = load_cursor(session_factory, producer)
    read = 0
    for _ in range(MAX_PAGES_PER_RUN):
        try:
            with eventlet.Timeout(FETCH_TIMEOUT_SECONDS):
                page = fetch(cursor)
        except (Exception, eventlet.Timeout) as exc:
            log.warning("cannot read the %s event log now: %r", producer, exc)
            break
        for body in page["events"]:
            apply(body)
        read += len(page["events"])
        if not page["events"]:
            break
        cursor = page["next_cursor"]
        save_cursor(session_factory, producer, cursor)
    if read:
        log.info("read %d event(s) from the %s event log", read, producer)
    return read


def load_cursor(session_factory, producer):
    with session_factory() as session:
        row = session.get(ProducerCursor, producer)
        return row.cursor if row else None


def save_cursor(session_factory, producer, cursor):
    try:
        with session_factory() as session:
            session.merge(ProducerCursor(producer=producer, cursor=cursor, updated_at=utcnow()))
            session.commit()
    except SQLAlchemyError as exc:  # the next run reads the page again; the inbox skips it
        log.warning("cannot save the %s log cursor: %s", producer, exc)
