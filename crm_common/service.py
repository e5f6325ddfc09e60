"""Entrypoints every service has, written once.

A service class lists these as bases: `ServiceBase` for its `health` RPC, its
request log and its metrics, `EventProducer` (which needs `self.db` and
`self.outbox`) for its event log and the outbox relay, and `EventConsumer`
(which needs `self.db` and `self.inbox`) for its dead letters.
"""

import logging

from nameko.timer import timer
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from crm_common import dead_letters
from crm_common.errors import Conflict, NotFound, ValidationFailed
from crm_common.logs import RequestLog
from crm_common.metrics import Metrics
from crm_common.rpc import rpc

log = logging.getLogger(__name__)

RELAY_INTERVAL_SECONDS = 1
RETRY_INTERVAL_SECONDS = 1
# A bulk replay runs at most this many entries per call; call again for more.
MAX_REPLAY = 100


class ServiceBase:
    request_log = RequestLog()
    metrics = Metrics()

    @rpc
    def health(self):
        """Answers when the service is up and its database answers, with what a
        service adds in `health_details` (its outbox backlog, the reports' lag)."""
        self.db.execute(text("SELECT 1"))
        details = self.health_details()
        self.db.rollback()
        return {"service": self.name, "status": "ok", **details}

    def health_details(self):
        details = {}
        if isinstance(self, EventProducer):
            # Events committed and not yet published: a backlog that grows while the
            # broker is away and drains once it is back.
            details["outbox_backlog"] = self.outbox.unpublished_count()
        return details


class EventProducer:
    @rpc(expected_exceptions=ValidationFailed)
    def events_since(self, cursor=None, limit=100):
        """The service's event log after `cursor`: `{"events", "next_cursor"}`."""
        return self.outbox.events_since(cursor, limit)

    @timer(interval=RELAY_INTERVAL_SECONDS)
    def relay_outbox(self):
        self.outbox.relay()


class EventConsumer:
    """Dead letters of the service's event handlers: retried, listed, replayed.

    A retry or replay runs the handler that failed the event again, in this
    service, through its de-duplicating inbox (crm_common.dead_letters).
    """

    @timer(interval=RETRY_INTERVAL_SECONDS)
    def retry_dead_letters(self):
        """Apply again the entries whose backoff is over."""
        model = self.inbox.dead_letter_model
        try:
            letter_ids = dead_letters.due(self.db, model)
            self.db.rollback()
        except SQLAlchemyError as exc:  # the database is away: next time
            log.warning("cannot read the dead letters now: %s", exc)
            return
        for letter_id in letter_ids:
            self._rerun(letter_id, automatic=True, statuses=(dead_letters.RETRYING,))

    @rpc
    def dead_letter_counts(self):
        """{"retrying": n, "dead": n, "oldest_failed_at"}."""
        return dead_letters.counts(self.db, self.inbox.dead_letter_model)

    @rpc(expected_exceptions=ValidationFailed)
    def list_dead_letters(self, query=None):
        """Entries oldest first, without their bodies: `status`, `event_type`, `limit`, `cursor`."""
        return dead_letters.page(self.db, self.inbox.dead_letter_model, query)

    @rpc(expected_exceptions=NotFound)
    def get_dead_letter(self, letter_id):
        """One entry, with the message's body."""
        return dead_letters.shown(
            dead_letters.get(self.db, self.inbox.dead_letter_model, letter_id)
        )

    @rpc(expected_exceptions=(NotFound, Conflict))
    def replay_dead_letter(self, letter_id):
        """Run the entry's handler again now: `{"id", "outcome", "letter"}`.

        `outcome` is applied, already_applied or ignored (the entry is gone,
        `letter` is null), or failed (`letter` has the new error).
        """
        letter = dead_letters.get(self.db, self.inbox.dead_letter_model, letter_id)
        self.db.rollback()
        result = self._rerun(letter.id, automatic=False)
        if result is None:
            raise being_retried(letter.id)
        return result

    @rpc(expected_exceptions=ValidationFailed)
    def replay_dead_letters(self, query=None):
        """Replay the entries a list with `query` would give (status dead unless said),
        up to MAX_REPLAY: `{"replayed", "applied", "failed", "results"}`."""
        query = {"status": dead_letters.DEAD, **(query or {})}
        query["limit"] = min(dead_letters.load_query(query)["limit"], MAX_REPLAY)
        listed = dead_letters.page(self.db, self.inbox.dead_letter_model, query)["items"]
        self.db.rollback()
        results = [
            result
            for result in (self._rerun(item["id"], automatic=False) for item in listed)
            if result is not None
        ]
        failed = sum(result["outcome"] == "failed" for result in results)
        return {
            "replayed": len(results),
            "applied": len(results) - failed,
            "failed": failed,
            "results": results,
        }

    @rpc(expected_exceptions=(NotFound, Conflict))
    def discard_dead_letter(self, letter_id):
        """Forget an entry without applying it (not while a retry or replay of it runs)."""
        model = self.inbox.dead_letter_model
        letter = dead_letters.get(self.db, model, letter_id)
        if not dead_letters.discard(self.db, model, letter.id):
            raise being_retried(letter.id)
        log.warning("dead letter discarded", extra={"dead_letter_id": letter.id})
        return {"id": letter.id}

    def _rerun(self, letter_id, automatic, statuses=dead_letters.STATUSES):
        """Claim the entry, run its handler, settle it; None if another run holds it."""
        inbox, model = self.inbox, self.inbox.dead_letter_model
        with inbox.database.session() as session:
            letter = dead_letters.claim(session, model, letter_id, statuses=statuses)
            if letter is None:
                return None
            try:
                outcome, failure = inbox.rerun(self, letter), None
            except Exception as exc:  # every kind: the entry keeps it
                outcome, failure = "failed", exc
            letter = dead_letters.settle(
                session, model, letter_id, failure, inbox.policy, automatic
            )
        extra = {"dead_letter_id": letter_id, "outcome": outcome}
        log.info("dead letter %s %s", "retried" if automatic else "replayed", outcome, extra=extra)
        return {
            "id": letter_id,
            "outcome": outcome,
            "letter": dead_letters.shown(letter) if letter is not None else None,
        }


def being_retried(letter_id):
    return Conflict(
        f"Dead letter {letter_id} is being retried right now; ask again shortly.",
        details={"id": letter_id},
    )
