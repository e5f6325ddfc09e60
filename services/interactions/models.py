"""The interactions service's tables; no other service reads them."""

from crm_common.db import make_base
from crm_common.outbox import OutboxMixin

Base = make_base()


class OutboxEvent(OutboxMixin, Base):
    pass
