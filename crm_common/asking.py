"""One service asking another, bounded in time.

Nameko RPC has no timeout of its own; a service that checks something with
another (a new record's customer, an interaction's deal) waits at most
`timeout` seconds and then answers `Unavailable` (503 at the gateway) rather
than hanging its caller. Call it before a write transaction begins.
"""

import eventlet
from nameko.exceptions import RemoteError, UnknownService

from crm_common.errors import Unavailable
from crm_common.metrics import timed_call


def ask(proxy, method, *args, timeout, service):
    """`proxy.method(*args)`, or Unavailable if `service` cannot answer within `timeout`."""
    timer = eventlet.Timeout(timeout)
    try:
        with timed_call(proxy, service, method):
            return getattr(proxy, method)(*args)
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise Unavailable(f"The {service} service did not answer within {timeout:g} s.") from None
    except (UnknownService, RemoteError, OSError) as exc:
        raise Unavailable(f"The {service} service cannot answer {method} ({exc}).") from None
    finally:
        timer.cancel()
