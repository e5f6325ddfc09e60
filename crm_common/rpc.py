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
"""

import logging

from nameko import rpc as nameko_rpc

log = logging.getLogger(__name__)


class Rpc(nameko_rpc.Rpc):
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
