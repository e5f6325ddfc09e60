"""One service asking another, bounded in time.

Nameko RPC has no timeout of its own; a service that checks something with
another (a new record's customer, an interaction's deal) waits at most
`timeout` seconds and then answers `Unavailable` (503 at the gateway) rather
than hanging its caller. Call it before a write transaction begins. The call
expires in the broker's queue at the same moment, so a service that is down or
busy does not run it later, when nobody waits for the answer any more.
"""

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from nameko.rpc import ServiceProxy

from crm_common.errors import Unavailable
from crm_common.metrics import timed_call


def expiring(proxy, seconds):
    """The same service proxy, its calls expiring in the queue after `seconds`.

    A call still queued when the caller stops waiting (the service is down or
    busy) is dropped by the broker instead of running later, behind the
    caller's back. One already taken by the service runs to its end. A proxy
    that is not Nameko's (a test's stand-in) is answered as it is.
    """
    if not isinstance(proxy, ServiceProxy):
        return proxy
    return ServiceProxy(
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
