"""Pipeline service workers on a real database, its neighbours faked.

Unit tests use it on a SQLite file, integration tests on PostgreSQL when
they need row locks and concurrent transactions.
"""

from nameko.testing.services import worker_factory
from sqlalchemy import select

from crm_common.config import from_env
from crm_common.envelope import make_envelope
from crm_common.outbox import OutboxWriter
from services.pipeline.events import CATALOG
from services.pipeline.models import AppliedEvent, DeadLetter, OutboxEvent
from services.pipeline.service import PipelineService
from tests.support.fakes import bound_inbox, bound_outbox, database_for


class FakeCustomers:
    """resolve_customer as the customers service answers it: every id is a live customer."""

    def __init__(self):
        self.merged = {}

    def resolve_customer(self, customer_id):
        return {"id": self.merged.get(customer_id, customer_id), "state": "active"}


class PipelineWorkers:
    """`workers()` is a fresh worker, as Nameko gives each request, with its own session,
    on the database at `url` (at the pipeline's newest schema)."""

    def __init__(self, url):
        self.database = database_for(url)
        self.outbox = bound_outbox(OutboxEvent, CATALOG, self.database, service_name="pipeline")
        self.inbox = bound_inbox(AppliedEvent, DeadLetter, self.database, service_name="pipeline")
        self.customers = FakeCustomers()
        self.sessions = []

    def __call__(self):
        session = self.database.session()
        self.sessions.append(session)
        return worker_factory(
            PipelineService,
            db=session,
            outbox=OutboxWriter(self.outbox, []),
            inbox=self.inbox,
            customers=self.customers,
            config=from_env({"CRM_RPC_TIMEOUT": "0.2"}),
        )

    def events(self, aggregate_id):
        """(event_type, sequence) of the aggregate's events in the log, oldest first."""
        with self.database.session() as session:
            return [
                (row.event_type, row.sequence)
                for row in session.scalars(
                    select(OutboxEvent)
                    .where(OutboxEvent.aggregate_id == aggregate_id)
                    .order_by(OutboxEvent.id)
                )
            ]

    def close(self):
        for session in self.sessions:
            session.close()
        self.database.engine.dispose()


def customer_event(event_type, aggregate_id, data, sequence=2):
    """An event of the customers service as the broker delivers it."""
    return make_envelope(
        event_type=event_type,
        producer="customers",
        aggregate_id=aggregate_id,
        sequence=sequence,
        data=data,
    )
