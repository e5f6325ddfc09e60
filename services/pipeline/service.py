"""The pipeline service: pipelines, stages and deals."""

from crm_common.db import Database
from crm_common.outbox import Outbox
from crm_common.service import EventProducer, ServiceBase
from services.pipeline.events import CATALOG
from services.pipeline.models import OutboxEvent


class PipelineService(ServiceBase, EventProducer):
    name = "pipeline"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
