"""Entrypoints every service has, written once.

A service class lists these as bases: `ServiceBase` for its `health` RPC, its
request log and its metrics, and `EventProducer` (which needs `self.db` and
`self.outbox`) for its event log and the outbox relay.
"""

from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy import text

from crm_common.errors import ValidationFailed
from crm_common.logs import RequestLog
from crm_common.metrics import Metrics

RELAY_INTERVAL_SECONDS = 1


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
