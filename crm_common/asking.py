"""One service asking another, bounded in time.

Nameko RPC has no timeout of its own; a service that checks something with
another (a new record's customer, an interaction's deal) waits at most
`timeout` seconds and then answers `Unavailable` (503 at the gateway) rather
than hanging its caller. Call it before a write transaction begins. The call
expires in the broker's queue at the same moment, so a service that is down or
busy does not run it later, when nobody waits for the answer any more.
"""

import eventlet
from nameko.constants import NON_PERSISTENT
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import MethodProxy, ServiceProxy

from crm_common.errors import Unavailable
from crm_common.metrics import timed_call
from crm_common.rpc import PooledPublisher, UnconfirmedPublisher


class ReadPublisher(UnconfirmedPublisher):
    """Publishes a read's request: no confirm, not persistent, not mandatory."""

    # A read outlives no broker restart: nobody would wait for its answer any more.
    delivery_mode = NON_PERSISTENT

    def publish(self, payload, **kwargs):
        # Nameko asks for mandatory delivery to learn of an unknown service, which it
        # reads only along with the confirm: unconfirmed, the broker's return would sit
        # unread on the connection. Unroutable, the read is dropped and times out.
        return super().publish(payload, **{**kwargs, "mandatory": False})


class CallMethodProxy(MethodProxy):
    publisher_cls = PooledPublisher


class CallServiceProxy(ServiceProxy):
    method_proxy_cls = CallMethodProxy

    def __getattr__(self, name):
        return self.method_proxy_cls(
            self.worker_ctx, self.service_name, name, self.reply_listener, **self.options
        )


class ReadMethodProxy(MethodProxy):
    publisher_cls = ReadPublisher


class ReadServiceProxy(CallServiceProxy):
    method_proxy_cls = ReadMethodProxy


def expiring(proxy, seconds, confirm=True):
    """The same service proxy, its calls expiring in the queue after `seconds`.

    A call still queued when the caller stops waiting (the service is down or
    busy) is dropped by the broker instead of running later, behind the
    caller's back. One already taken by the service runs to its end. A proxy
    that is not Nameko's (a test's stand-in) is answered as it is.

    Unless `confirm`, the requests go without a publisher confirm (a broker
    round trip each): for reads, whose request the broker may lose or fail to
    route (a service never started) at the cost of a wait for `seconds`, where
    a confirmed call learns at once that the service is not running.
    """
    if not isinstance(proxy, ServiceProxy):
        return proxy
    proxy_cls = CallServiceProxy if confirm else ReadServiceProxy
    return proxy_cls(
        proxy.worker_ctx,
        proxy.service_name,
        proxy.reply_listener,
        **{**proxy.options, "expiration": seconds},
    )


def ask(proxy, method, *args, timeout, service):
    """`proxy.method(*args)`, or Unavailable if `service` cannot answer within `timeout`."""
    timer = eventlet.Timeout(timeout)
    try:
        with timed_call(proxy, service, method):
            return getattr(expiring(proxy, timeout), method)(*args)
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise Unavailable(f"The {service} service did not answer within {timeout:g} s.") from None
    except (UnknownService, RemoteError, OSError) as exc:
        raise Unavailable(f"The {service} service cannot answer {method} ({exc}).") from None
    finally:
        timer.cancel()
