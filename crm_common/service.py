"""Entrypoints every service has, written once.

A service class lists these as bases: `ServiceBase` for its `health` RPC and
`EventProducer` (which needs `self.db` and `self.outbox`) for its event log
and the outbox relay.
"""

from nameko.timer import timer
from sqlalchemy import text

from crm_common.errors import ValidationFailed
from crm_common.logs import RequestLog
from crm_common.rpc import rpc

RELAY_INTERVAL_SECONDS = 1


class ServiceBase:
    request_log = RequestLog()

    @rpc
    def health(self):
        """Answers when the service is up and its database answers."""
        self.db.execute(text("SELECT 1"))
        return {"service": self.name, "status": "ok"}


class EventProducer:
    @rpc(expected_exceptions=ValidationFailed)
    def events_since(self, cursor=None, limit=100):
        """The service's event log after `cursor`: `{"events", "next_cursor"}`."""
        return self.outbox.events_since(cursor, limit)

    @timer(interval=RELAY_INTERVAL_SECONDS)
    def relay_outbox(self):
        self.outbox.relay()
