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
from functools import partial

from nameko import events
from nameko.exceptions import ContainerBeingKilled
from nameko.extensions import ProviderCollector
from nameko.messaging import QueueConsumer

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


class BatchQueueConsumer(QueueConsumer):
    """The queue consumer of batch handlers: it gives each message to its handler in its
    own green thread, where Nameko's spawns a green thread for each (a handler that only
    puts the message in a list needs none). That spawn was the largest cost per message
    while a backlog drains, on the one OS thread the group commit also needs.

    A shared extension of its own, so the batch handlers of a service consume on a
    connection of their own; the other consumers (RPC, plain handlers) keep Nameko's."""

    @property
    def prefetch_count(self):
        """Twice the service's max_workers, what a queue's workers take at once: the broker
        sends the next batches while these are committed. With only that many, a queue
        draining alone waited for its batches' acknowledgements, then for the broker's
        next messages, with the group commit idle meanwhile."""
        return 2 * self.container.max_workers

    def handle_message(self, provider, body, message):
        provider.handle_message(body, message)

    def unregister_provider(self, provider):
        """As Nameko's, except while the consumer is still starting. Nameko then signals
        "the last provider is gone" for each provider, and the second signal raises: the
        container's stop failed and the process hung. The batch handlers share this
        consumer apart from the RPC one, so a stop soon after the service first answered
        (its RPC consumer ready, this one still declaring its queues) met it."""
        if self._consumers_ready.ready():
            super().unregister_provider(provider)
        else:  # no consumer to cancel yet: gone once the last provider is
            ProviderCollector.unregister_provider(self, provider)


class BatchEventHandler(EventHandler):
    """An `@event_handler` whose method takes the messages waiting in its queue together:
    `method(self, bodies)`, a list of at most `batch_size` event bodies, oldest first.

    One Nameko worker per message costs more than a group commit of many events
    (injecting every dependency, a greenthread, its teardown): a do-nothing
    handler drains a backlog at about half the rate of a plain AMQP consumer
    (bench/bare_events.py). Here the messages the broker delivers (up to the
    queue consumer's prefetch, twice the service's max_workers) wait in a list;
    at most `concurrency` workers of the handler run at once, each on what
    waited when it started. So a quiet queue hands over each message at once, and a
    backlog is taken in batches as large as the broker delivers meanwhile.

    Each message is settled only once its worker is done: all acknowledged if the
    method returned, all requeued if it raised (the queue, its name and its
    arguments stay those of `@event_handler`, so switching loses nothing). A
    message prefetched but not yet handed to a worker when the service stops, or
    is killed, is never acknowledged: the broker gives it back, and the inbox
    applies it once.
    """

    queue_consumer = BatchQueueConsumer()

    def __init__(self, source_service, event_type, batch_size=None, concurrency=2, **kwargs):
        super().__init__(source_service, event_type, **kwargs)
        self.batch_size = batch_size
        self.concurrency = concurrency

    def setup(self):
        super().setup()
        # By default each worker takes its share of the container's max_workers (half of
        # what the broker may have delivered: the rest waits for the next workers).
        self.batch_size = self.batch_size or max(1, self.container.max_workers // self.concurrency)
        self.waiting = []  # (body, message), in delivery order
        self.running = 0
        self.starting = False  # a start of workers is on its way
        self.stopping = False

    def stop(self):
        self.stopping = True
        super().stop()

    def handle_message(self, body, message):
        self.waiting.append((body, message))
        self._start_soon()

    def _start_soon(self):
        # Not at once: the messages the queue consumer received with this one come next,
        # before its green thread lets the others run; the workers start after them, with
        # all of them.
        if not self.starting and self.running < self.concurrency and not self.stopping:
            self.starting = True
            self.container.spawn_managed_thread(self._start_workers, identifier=self.method_name)

    def _start_workers(self):
        self.starting = False
        while self.waiting and self.running < self.concurrency and not self.stopping:
            batch = self.waiting[: self.batch_size]
            del self.waiting[: self.batch_size]
            messages = [message for _, message in batch]
            self.running += 1
            try:
                self.container.spawn_worker(
                    self,
                    ([body for body, _ in batch],),
                    {},
                    context_data=self.shared_context(messages),
                    handle_result=partial(self.handle_batch_result, messages),
                )
            except ContainerBeingKilled:
                self.running -= 1
                for message in messages:
                    self.queue_consumer.requeue_message(message)
                return

    def shared_context(self, messages):
        """The worker's context: what every message of the batch carries alike. One
        message's request id or call ids would label the log lines of all the others."""
        first, *others = [self.unpack_message_headers(message) for message in messages]
        return {
            key: value
            for key, value in first.items()
            if all(other.get(key) == value for other in others)
        }

    def handle_batch_result(self, messages, worker_ctx, result=None, exc_info=None):
        try:
            for message in messages:
                self.handle_message_processed(message, result, exc_info)
        finally:
            self.running -= 1
            if self.waiting:
                self._start_soon()
        return result, exc_info


event_batch_handler = BatchEventHandler.decorator
