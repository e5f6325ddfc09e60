"""The reports service: materialized views fed by other services' events."""

from nameko.events import event_handler
from nameko.rpc import rpc

from crm_common.db import Database
from crm_common.envelope import utcnow
from crm_common.inbox import Inbox
from crm_common.outbox import Outbox
from crm_common.service import EventProducer, ServiceBase
from services.reports import views
from services.reports.events import CATALOG
from services.reports.models import AppliedEvent, OutboxEvent
from services.reports.schemas import CustomerCreatedData


class ReportsService(ServiceBase, EventProducer):
    name = "reports"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
    inbox = Inbox(AppliedEvent)

    # Handler names are part of their queues' names: never rename one.
    # requeue_on_error: a failure (database away) puts the event back
    # instead of losing it; an invalid event is dropped by the inbox.
    @event_handler("customers", "customer_created", requeue_on_error=True)
    def apply_customer_created(self, body):
        self.inbox.apply(body, views.apply_customer_created, CustomerCreatedData())

    @rpc
    def customers_by_status_owner(self):
        report = views.customers_by_status_owner(self.db)
        report.update(views.freshness(self.db, views.CUSTOMERS_VIEW, utcnow()))
        return report
