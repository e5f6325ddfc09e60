"""The interactions service: contacts, feedback, tickets and satisfaction."""

from crm_common.db import Database
from crm_common.outbox import Outbox
from crm_common.service import EventProducer, ServiceBase
from services.interactions.events import CATALOG
from services.interactions.models import OutboxEvent


class InteractionsService(ServiceBase, EventProducer):
    name = "interactions"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
