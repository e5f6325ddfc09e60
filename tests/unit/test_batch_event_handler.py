"""`@event_batch_handler`: the messages waiting in a queue go to one worker together, and
each is settled with the broker only once that worker is done."""

import eventlet
from nameko.exceptions import ContainerBeingKilled

from crm_common.handlers import BatchEventHandler, BatchQueueConsumer, EventHandler


class Broker:
    """What the handler settles its messages with."""

    def __init__(self):
        self.acked, self.requeued = [], []

    def ack_message(self, message):
        self.acked.append(message)

    def requeue_message(self, message):
        self.requeued.append(message)


class Message:
    def __init__(self, number, headers=None):
        self.number = number
        self.headers = headers or {}

    def __repr__(self):
        return f"Message({self.number})"


class Container:
    """Workers that run until the test finishes them."""

    def __init__(self):
        self.workers = []
        self.contexts = []
        self.killed = False

    def spawn_managed_thread(self, fn, identifier=None):
        return eventlet.spawn(fn)

    def spawn_worker(self, entrypoint, args, kwargs, context_data=None, handle_result=None):
        if self.killed:
            raise ContainerBeingKilled()
        self.workers.append((args[0], handle_result))
        self.contexts.append(context_data)

    def finish(self, place, exc_info=None):
        bodies, handle_result = self.workers[place]
        handle_result(None, result=None if exc_info else len(bodies), exc_info=exc_info)
        eventlet.sleep(0)


def handler(batch_size=100, concurrency=2):
    found = BatchEventHandler("pipeline", "deal_created", batch_size, concurrency)
    found.method_name = "apply_deal_created"
    found.container = Container()
    found.queue_consumer = Broker()
    # What setup() leaves (its queue declaration needs a real container).
    found.waiting, found.running, found.starting, found.stopping = [], 0, False, False
    return found


def deliver(found, numbers):
    """Messages the queue consumer received at once, each reaching the handler in a
    greenthread of its own, as Nameko's QueueConsumer would hand them over (the
    BatchQueueConsumer hands them over in its own, test below)."""
    messages = [Message(number) for number in numbers]
    for message in messages:
        eventlet.spawn(found.handle_message, {"n": message.number}, message)
    eventlet.sleep(0)
    eventlet.sleep(0)
    return messages


def bodies(found, place):
    return [body["n"] for body in found.container.workers[place][0]]


def test_messages_received_together_go_to_one_worker_and_are_acked_once_it_is_done():
    found = handler()
    first = deliver(found, range(5))
    assert [bodies(found, 0)] == [[0, 1, 2, 3, 4]]
    assert found.queue_consumer.acked == []  # nothing settled while the worker runs
    found.container.finish(0)
    assert found.queue_consumer.acked == first
    assert found.queue_consumer.requeued == []


def test_a_backlog_waits_for_a_free_worker_and_goes_in_batches_of_at_most_batch_size():
    found = handler(batch_size=3, concurrency=2)
    deliver(found, range(8))
    assert [bodies(found, 0), bodies(found, 1)] == [[0, 1, 2], [3, 4, 5]]
    deliver(found, [8])
    assert len(found.container.workers) == 2  # both workers busy: the rest wait
    found.container.finish(1)
    assert bodies(found, 2) == [6, 7, 8]
    assert [message.number for message in found.queue_consumer.acked] == [3, 4, 5]


def test_a_worker_that_raised_puts_every_message_of_its_batch_back():
    found = handler()
    messages = deliver(found, range(3))
    failed = (RuntimeError, RuntimeError("database away"), None)
    found.container.finish(0, exc_info=failed)
    assert found.queue_consumer.requeued == messages
    assert found.queue_consumer.acked == []


def test_messages_not_yet_handed_over_when_the_service_stops_are_left_to_the_broker():
    found = handler(concurrency=1)
    deliver(found, [0])
    deliver(found, [1, 2])
    found.stopping = True  # stop() unregisters from a real queue consumer too
    found.container.finish(0)
    assert len(found.container.workers) == 1
    assert [message.number for message in found.queue_consumer.acked] == [0]
    assert found.queue_consumer.requeued == []  # the broker gives 1 and 2 back on close


def test_messages_arriving_while_the_container_is_killed_go_back_to_the_queue():
    found = handler()
    found.container.killed = True
    messages = deliver(found, range(2))
    assert found.queue_consumer.requeued == messages
    assert found.running == 0


def test_by_default_each_worker_takes_its_share_of_the_queues_prefetch():
    found = BatchEventHandler("pipeline", "deal_created", concurrency=2)
    found.method_name = "apply_deal_created"
    found.container = Container()
    found.container.service_name, found.container.config = "reports", {}
    found.container.max_workers = 500  # nameko's prefetch of each queue
    found.queue_consumer = Broker()
    found.queue_consumer.register_provider = lambda provider: None
    found.setup()
    assert found.batch_size == 250
    assert found.queue.name == "evt-pipeline-deal_created--reports.apply_deal_created"


def test_a_batch_worker_carries_only_the_context_its_messages_share():
    """Log lines bind the worker's request id: one message's must not label the others'."""
    found = handler()
    headers = [{"nameko.request_id": f"r-{number}", "nameko.tenant": "acme"} for number in range(3)]
    for number, header in enumerate(headers):
        eventlet.spawn(found.handle_message, {"n": number}, Message(number, header))
    eventlet.sleep(0)
    eventlet.sleep(0)
    eventlet.spawn(found.handle_message, {"n": 3}, Message(3, {"nameko.request_id": "r-3"}))
    found.container.finish(0)
    eventlet.sleep(0)
    eventlet.sleep(0)
    assert [bodies(found, place) for place in (0, 1)] == [[0, 1, 2], [3]]
    assert found.container.contexts == [{"tenant": "acme"}, {"request_id": "r-3"}]


def test_the_batch_queue_consumer_hands_messages_over_without_a_green_thread_for_each():
    found = handler(batch_size=100)
    spawned = []
    spawn = found.container.spawn_managed_thread
    found.container.spawn_managed_thread = lambda fn, identifier=None: (
        spawned.append(identifier) or spawn(fn, identifier)
    )
    consumer = BatchQueueConsumer()
    messages = [Message(number) for number in range(30)]
    for message in messages:  # as kombu calls back for messages read together
        consumer.handle_message(found, {"n": message.number}, message)
    assert spawned == ["apply_deal_created"]  # one start of workers, for them all
    eventlet.sleep(0)
    assert bodies(found, 0) == list(range(30))
    found.container.finish(0)
    assert found.queue_consumer.acked == messages


def test_batch_handlers_consume_through_the_batch_queue_consumer():
    assert isinstance(BatchEventHandler.queue_consumer, BatchQueueConsumer)
    assert not isinstance(EventHandler.queue_consumer, BatchQueueConsumer)


def test_the_broker_sends_a_queue_the_next_batches_while_its_workers_commit_theirs():
    consumer = BatchQueueConsumer()
    consumer.container = Container()
    consumer.container.max_workers = 500
    found = handler(batch_size=None, concurrency=2)
    found.container.service_name, found.container.config = "reports", {}
    found.container.max_workers = 500
    found.queue_consumer.register_provider = lambda provider: None
    found.setup()
    # Two workers of 250 each, and as many again on their way meanwhile.
    assert consumer.prefetch_count == 2 * found.concurrency * found.batch_size == 1000
