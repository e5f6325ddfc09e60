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
"""

import logging

from nameko import rpc as nameko_rpc
from nameko.amqp.publish import Publisher
from nameko.constants import (
    AMQP_SSL_CONFIG_KEY,
    AMQP_URI_CONFIG_KEY,
    DEFAULT_SERIALIZER,
    DEFAULT_TRANSPORT_OPTIONS,
    LOGIN_METHOD_CONFIG_KEY,
    SERIALIZER_CONFIG_KEY,
)

log = logging.getLogger(__name__)


class UnconfirmedPublisher(Publisher):
    use_confirms = False
    # Nameko's Publisher writes each publish's confirm setting into its class's
    # transport options, which the connections of its producer pools keep a
    # reference to and read when they (re)connect. Shared with the confirmed
    # publishers, a reconnection at the wrong moment would make their connection
    # unconfirmed (or this one confirmed): a dict of its own.
    transport_options = {**DEFAULT_TRANSPORT_OPTIONS, "confirm_publish": False}


class Responder(nameko_rpc.Responder):
    publisher_cls = UnconfirmedPublisher


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
