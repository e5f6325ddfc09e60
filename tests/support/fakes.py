"""Fakes for tests: a broker that records or refuses, an outbox and an inbox without a
container, a clock."""

from datetime import timedelta
from types import SimpleNamespace

from sqlalchemy.orm import sessionmaker

from crm_common.db import Database, make_engine
from crm_common.inbox import Inbox
from crm_common.outbox import Outbox


class FakePublisher:
    """Records what would have gone to the broker; `down = True` makes it refuse."""

    def __init__(self):
        self.sent = []
        self.batches = []
        self.down = False

    def publish_many(self, bodies, exchange=None):
        """As BatchPublisher's: (how many the broker confirmed, the error or None)."""
        self.batches.append([body["event_id"] for body in bodies])
        if self.down:
            return 0, ConnectionRefusedError("broker is down")
        self.sent.extend(bodies)
        return len(bodies), None

    def close(self):
        pass

    @property
    def event_ids(self):
        return [body["event_id"] for body in self.sent]


def database_for(url):
    database = Database()
    database.engine = make_engine(url)
    database.sessionmaker = sessionmaker(bind=database.engine, expire_on_commit=False)
    return database


def bound_outbox(model, catalog, database, service_name="customers", grace_seconds=0):
    """An `Outbox` wired as its container would wire it, with a fake broker."""
    outbox = Outbox(model, catalog)
    outbox.container = SimpleNamespace(service_name=service_name, config={})
    outbox.database = database
    outbox.publisher = FakePublisher()
    outbox.exchange = None
    outbox.relay_grace = timedelta(seconds=grace_seconds)
    return outbox


def bound_inbox(model, dead_letter_model, database, service_name="reports"):
    """An `Inbox` wired as its container would wire it (one event at a time)."""
    inbox = Inbox(model, dead_letter_model)
    inbox.database = database
    inbox.service = service_name
    return inbox


class FakeClock:
    """A clock in seconds (like time.time) that moves only when a test sets `now`."""

    def __init__(self, now=1000.0):
        self.now = now

    def __call__(self):
        return self.now
