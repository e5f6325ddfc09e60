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
"""

from nameko import events


class EventHandler(events.EventHandler):
    def __init__(self, source_service, event_type, requeue_on_error=True, **kwargs):
        super().__init__(source_service, event_type, requeue_on_error=requeue_on_error, **kwargs)

    def setup(self):
        super().setup()  # names and declares nothing yet: queues are declared on start
        if self.container.config.get("CRM_EVENT_QUEUE_TYPE", "classic") == "quorum":
            self.queue.queue_arguments = {"x-queue-type": "quorum"}


event_handler = EventHandler.decorator
