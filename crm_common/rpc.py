"""The `@rpc` entrypoint of every service: Nameko's, but a reply it cannot send does not
kill the service.

Nameko sends an RPC's reply from the worker's thread. If the broker goes away
at that moment, the publish raises there, Nameko takes an error in a worker's
thread for a broken container and kills the whole service, and the process
then stays down (or hangs) after the broker is back: one request in flight
during a broker restart was enough (tests/fault/test_fault_broker_down.py).
The work the reply was about is done and committed; the caller gets no answer
and has stopped waiting by then or soon will (the gateway answers 503 after
CRM_RPC_TIMEOUT). So a reply that cannot be sent is logged and dropped, and
the service goes on consuming once its connection is back.

Replies go without a publisher confirm. The confirm is a broker round trip
per reply (a good part of a cached report read) and buys nothing: a reply
the broker loses is one the caller stops waiting for, as when the service is
slow. Requests keep theirs, which tells the caller at once that a service is
not running.

Every publish of these publishers goes through a kombu producer pool found
once per broker and confirm setting (`PooledPublisher`): Nameko's Publisher
builds a kombu `Connection` (parsing the broker URL) for every publish only
to look its pool up. A reply is serialized once (Nameko serialized it twice:
once to check it can be, once to send it).

The gateway takes its replies without acknowledging them (`RpcProxy` below):
a reply is of use only to the call waiting for it, in the process that asked,
and an acknowledgement was a frame sent for every call.
"""

import logging
import sys
import threading

import kombu.serialization
from kombu import Connection
from kombu.exceptions import ChannelError
from kombu.pools import producers
from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher, UndeliverableMessage
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)
from nameko.exceptions import UnserializableValueError, serialize
from nameko.messaging import QueueConsumer

log = logging.getLogger(__name__)


_POOLS = {}
_POOLS_LOCK = threading.Lock()


def producer_pool(amqp_uri, confirms, ssl=None, login_method=None):
    """kombu's producer pool for the broker at `amqp_uri` (publisher confirms or not), the
    one Nameko's Publisher would find through a new Connection, found once."""
    key = (amqp_uri, bool(confirms), repr(ssl), login_method)
    pool = _POOLS.get(key)
    if pool is None:
        with _POOLS_LOCK:
            pool = _POOLS.get(key)
            if pool is None:
                # Transport options of its own that nothing changes later: the pool's
                # connections read them whenever they (re)connect.
                options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": bool(confirms)}
                connection = Connection(
                    amqp_uri, transport_options=options, ssl=ssl, login_method=login_method
                )
                pool = _POOLS[key] = producers[connection]
    return pool


class PooledPublisher(Publisher):
    """Nameko's Publisher, publishing through `producer_pool`: same messages, same pools,
    without a kombu Connection made for every publish."""

    def publish(self, payload, **kwargs):
        """Publish a message, as Nameko's Publisher.publish does."""
        publish_kwargs = dict(self.publish_kwargs)
        headers = dict(publish_kwargs.pop("headers", {}))
        headers.update(kwargs.pop("headers", {}))
        headers.update(kwargs.pop("extra_headers", {}))
        use_confirms = kwargs.pop("use_confirms", self.use_confirms)
        kwargs.pop("transport_options", None)  # the pool's own (see producer_pool)
        options = {
            name: kwargs.pop(name, getattr(self, name))
            for name in (
                "delivery_mode",
                "mandatory",
                "priority",
                "expiration",
                "serializer",
                "compression",
                "retry",
                "retry_policy",
            )
        }
        declare = [*self.declare, *kwargs.pop("declare", ())]
        publish_kwargs.update(kwargs)
        pool = producer_pool(self.amqp_uri, use_confirms, self.ssl, self.login_method)
        with pool.acquire(block=True) as producer:
            try:
                producer.publish(
                    payload, headers=headers, declare=declare, **options, **publish_kwargs
                )
            except ChannelError as exc:
                if "NO_ROUTE" in str(exc):
                    raise UndeliverableMessage() from exc
                raise


class UnconfirmedPublisher(PooledPublisher):
    use_confirms = False
    # Nameko's Publisher writes each publish's confirm setting into its class's
    # transport options; this one's pools never read them (producer_pool), but a
    # Publisher.publish called on it must not change the confirmed publishers': a
    # dict of its own.
    transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}


class Responder(nameko_rpc.Responder):
    publisher_cls = UnconfirmedPublisher

    def send_response(self, result, exc_info):
        """Nameko's, serializing the reply once (Nameko's checked it could, then sent it)."""
        error = serialize(exc_info[1]) if exc_info is not None else None
        # The reply is encoded as its request was.
        content_type = self.message.properties["content_type"]
        serializer = kombu.serialization.registry.type_to_name[content_type]
        try:
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": result, "error": error}, serializer
            )
        except Exception:
            exc_info = sys.exc_info()
            error = serialize(UnserializableValueError(result))
            result = None
            content_type, encoding, body = kombu.serialization.dumps(
                {"result": None, "error": error}, serializer
            )
        publisher = self.publisher_cls(self.amqp_uri, ssl=self.ssl, login_method=self.login_method)
        publisher.publish(
            body,
            content_type=content_type,
            content_encoding=encoding,
            exchange=self.exchange,
            routing_key=self.message.properties["reply_to"],
            correlation_id=self.message.properties.get("correlation_id"),
        )
        return result, exc_info


class RpcConsumer(nameko_rpc.RpcConsumer):
    def handle_result(self, message, result, exc_info):
        """Nameko's, with the Responder above."""
        config = self.container.config
        responder = Responder(
            config[AMQP_URI_CONFIG_KEY],
            nameko_rpc.get_rpc_exchange(config),
            config.get(SERIALIZER_CONFIG_KEY, DEFAULT_SERIALIZER),
            message,
            ssl=config.get(AMQP_SSL_CONFIG_KEY),
            login_method=config.get(LOGIN_METHOD_CONFIG_KEY),
        )
        result, exc_info = responder.send_response(result, exc_info)
        self.queue_consumer.ack_message(message)
        return result, exc_info


class Rpc(nameko_rpc.Rpc):
    rpc_consumer = RpcConsumer()

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return super().handle_result(message, worker_ctx, result, exc_info)
        except Exception as exc:  # any: raising here would kill the service
            log.warning(
                "the reply to %s could not be sent, its caller gets none: %s",
                self.method_name,
                exc,
                extra={"request_id": worker_ctx.data.get("request_id")},
            )
            # Nameko acknowledges after the reply. When the connection went too, the
            # broker gives the request back; the gateway's calls expire in the queue.
            try:
                self.rpc_consumer.queue_consumer.ack_message(message)
            except Exception:  # noqa: BLE001  the connection is gone: nothing to acknowledge on
                pass
            return result, exc_info


rpc = Rpc.decorator


class ReplyConsumer(QueueConsumer):
    """The consumer of a reply queue, taking replies without acknowledging them and
    handing each to its caller at once.

    A reply is of use only to the call waiting for it in this process. Were the
    connection to break while replies are on their way, those are lost, as a
    reply the service could not send is: their calls answer 503 at their timeout.
    """

    def get_consumers(self, consumer_cls, channel):
        for provider in self._providers:
            # Without acknowledgements the broker applies no prefetch limit either.
            self._consumers[provider] = consumer_cls(
                queues=[provider.queue],
                callbacks=[provider.handle_message],
                accept=self.accept,
                no_ack=True,
            )
        return self._consumers.values()


class ReplyListener(nameko_rpc.ReplyListener):
    queue_consumer = ReplyConsumer()

    def handle_message(self, body, message):
        # Wakes the waiting call; nothing to acknowledge, no thread of its own.
        event = self._reply_events.pop(message.properties.get("correlation_id"), None)
        if event is not None:
            event.send(body)


class RpcProxy(nameko_rpc.RpcProxy):
    """Nameko's RpcProxy, its replies taken by a ReplyListener above; for a process that
    consumes nothing else (the gateway): the listener has a broker connection of its own."""

    rpc_reply_listener = ReplyListener()
