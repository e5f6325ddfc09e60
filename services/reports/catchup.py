"""Reading producers' event logs, for what the broker could not deliver.

The broker drops events published before a subscriber's queue exists (the
first start of reports, a queue deleted by hand). So reports also follow each
producer's log through `events_since`, from a cursor they keep, and apply
what they find through the same inbox as live events: anything already
applied is skipped by its `event_id`.
"""

import logging
import time
from typing import NamedTuple

import eventlet
from sqlalchemy.exc import SQLAlchemyError

from crm_common.envelope import utcnow
from services.reports.models import ProducerCursor

log = logging.getLogger(__name__)

PAGE_SIZE = 500
MAX_PAGES_PER_RUN = 20
FETCH_TIMEOUT_SECONDS = 5


class Schedule:
    """When each producer's log is due (state kept across workers): at once, then every
    `interval` seconds. A log not read to its end (its producer did not answer, or the run
    stopped at MAX_PAGES_PER_RUN) is due again sooner, after 1, 2, 4 ... seconds, never
    more than `interval`: reports started beside their producers would otherwise wait a
    whole interval for the events the broker dropped before their queues existed (the
    first run comes while the producers are still starting)."""

    FIRST_RETRY_SECONDS = 1.0

    def __init__(self, interval):
        self.interval = interval
        self.next_run = {}
        self.retry = {}

    def due(self, producer):
        return time.monotonic() >= self.next_run.get(producer, 0.0)

    def ran(self, producer, finished):
        """Note a run of `producer`'s log that read it to its end (`finished`) or not."""
        if finished:
            self.retry.pop(producer, None)
            wait = self.interval
        else:
            last = self.retry.get(producer)
            wait = min(self.interval, last * 2 if last else self.FIRST_RETRY_SECONDS)
            self.retry[producer] = wait
        self.next_run[producer] = time.monotonic() + wait


class Run(NamedTuple):
    """What a run of follow_log did: events `read`, and whether it reached the log's end."""

    read: int
    finished: bool


def follow_log(producer, fetch, apply, session_factory):
    """Apply the producer's events after the stored cursor; answers a Run.

    `fetch(cursor)` answers a page of `events_since`; `apply(body)` applies one
    event idempotently. Stops quietly when the producer does not answer.
    """
    cursor = load_cursor(session_factory, producer)
    read, finished = 0, False
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
            finished = True
            break
        cursor = page["next_cursor"]
        save_cursor(session_factory, producer, cursor)
    if read:
        log.info("read %d event(s) from the %s event log", read, producer)
    return Run(read, finished)


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
