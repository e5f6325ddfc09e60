"""`@event_handler` for the services: nameko's, with the queue type the system runs with.

Queues are nameko's (`evt-<source>-<type>--<service>.<method>`, durable);
CRM_EVENT_QUEUE_TYPE=quorum declares them as quorum queues (replicated on a
RabbitMQ cluster). The default, classic, declares them exactly as before, so
existing queues are redeclared with the arguments they have: RabbitMQ refuses
(PRECONDITION_FAILED) to redeclare a queue with other arguments, so switching
an existing system means draining and deleting its queues first (README,
"Operations").

Handlers requeue on error by default: the inbox raises only when it cannot
record a failure (the database is away), and then the event must come back.

An acknowledgement (or requeue) the broker connection cannot carry any more is
logged and dropped: Nameko settles the message from the worker's thread, takes
an error there for a broken container and kills the whole service, which then
stays down after the broker is back (tests/fault/test_fault_broker_down.py).
The broker gives an unacknowledged message back once the connection is gone,
and the inbox applies it once, so nothing is lost by dropping the ack.
"""

import logging

from nameko import events

log = logging.getLogger(__name__)


class EventHandler(events.EventHandler):
    def __init__(self, source_service, event_type, requeue_on_error=True, **kwargs):
        super().__init__(source_service, event_type, requeue_on_error=requeue_on_error, **kwargs)

    def setup(self):
        super().setup()  # names and declares nothing yet: queues are declared on start
        if self.container.config.get("CRM_EVENT_QUEUE_TYPE", "classic") == "quorum":
            self.queue.queue_arguments = {"x-queue-type": "quorum"}

    def handle_message_processed(self, message, result=None, exc_info=None):
        try:
            super().handle_message_processed(message, result, exc_info)
        except Exception as exc:  # any: raising here would kill the service
            log.warning(
                "%s could not settle its message with the broker, it will come again: %s",
                self.method_name,
                exc,
            )


event_handler = EventHandler.decorator
