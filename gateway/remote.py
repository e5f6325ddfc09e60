"""Calls from the gateway to the services, and how their errors become HTTP.

`REMOTE_ERRORS` is the one table that maps a service's exception (by the
dotted path Nameko sends with it) to an HTTP status. The gateway imports no
service module: the paths are strings, and a test checks that every
`ServiceError` a service declares is listed here.

A call waits for the broker to confirm its request, which tells at once that
a service was never started (503 "not running"). The reads of customers,
deals, interactions and reports go without (`GatewayService.rpc(...,
confirm=False)`, crm_common/asking.py), but the CSV export with its long
timeout (the admin's reads, dead letters and rebuild status, keep it): the
confirm is a broker round trip, about a third of a cached report read, and a
read the broker loses or cannot route only costs its caller the wait for
CRM_RPC_TIMEOUT and a 503, with nothing done behind its back.
"""

import functools

import eventlet
from kombu.exceptions import OperationalError
from nameko import exceptions as nameko_exceptions
from nameko.exceptions import RemoteError, UnknownService

from crm_common.metrics import timed_call
from gateway.http import ApiError

REMOTE_ERRORS = {
    "crm_common.errors.ValidationFailed": 400,
    "crm_common.errors.NotFound": 404,
    "crm_common.errors.Conflict": 409,
    "crm_common.errors.InvalidTransition": 422,
    "crm_common.errors.Unavailable": 503,
    "crm_common.errors.Forbidden": 403,
    "crm_common.customer_refs.UnknownCustomer": 400,
    "services.customers.exceptions.InvalidCustomer": 400,
    "services.customers.exceptions.CustomerNotFound": 404,
    "services.customers.exceptions.DuplicateCustomer": 409,
    "services.customers.exceptions.ConcurrentUpdate": 409,
    "services.customers.exceptions.CustomerGone": 422,
    "services.customers.exceptions.InvalidImport": 400,
    "services.pipeline.exceptions.InvalidDeal": 400,
    "services.pipeline.exceptions.InvalidPipeline": 400,
    "services.pipeline.exceptions.DealNotFound": 404,
    "services.pipeline.exceptions.PipelineNotFound": 404,
    "services.pipeline.exceptions.InvalidStageTransition": 422,
    "services.pipeline.exceptions.StageInUse": 409,
    "services.pipeline.exceptions.PipelineNameTaken": 409,
    "services.pipeline.exceptions.ConcurrentDealUpdate": 409,
    "services.pipeline.exceptions.ConcurrentPipelineUpdate": 409,
    "services.pipeline.exceptions.NotDealOwner": 403,
    "services.interactions.exceptions.InvalidInput": 400,
    "services.interactions.exceptions.UnknownDeal": 400,
    "services.interactions.exceptions.InteractionNotFound": 404,
    "services.interactions.exceptions.TicketNotFound": 404,
    "services.interactions.exceptions.SatisfactionAlreadyRecorded": 409,
    "services.interactions.exceptions.InvalidTicketStep": 422,
}

# What a service raises when its own database is away (restarting, unreachable, out of
# connections, a transaction it must retry): an outage to the client (503), not a bug.
DATABASE_UNAVAILABLE = (
    "sqlalchemy.exc.OperationalError",
    "sqlalchemy.exc.InterfaceError",
    "sqlalchemy.exc.DisconnectionError",
    "sqlalchemy.exc.TimeoutError",
)


class DatabaseUnavailable(Exception):
    """A service answered that its database cannot serve it now (its log says why)."""


class RemoteServiceError(ApiError):
    """A service's `ServiceError`, rebuilt from the args Nameko carried back."""

    def __init__(self, status, message="", fields=None, details=None, *, exc_type=None):
        super().__init__(status, message, fields=fields)
        # Set apart from the keywords: a detail may be called "status" too.
        self.details = details or {}
        # The service's name for the error, as nameko's RemoteError has it.
        self.exc_type = exc_type


for _path, _status in REMOTE_ERRORS.items():
    nameko_exceptions.registry[_path] = functools.partial(
        RemoteServiceError, _status, exc_type=_path.rsplit(".", 1)[-1]
    )
for _path in DATABASE_UNAVAILABLE:
    nameko_exceptions.registry[_path] = DatabaseUnavailable


def call(proxy, method, *args, timeout, **kwargs):
    """`proxy.method(*args, **kwargs)`, answering 503 when the service cannot."""
    service = proxy.service_name
    timer = eventlet.Timeout(timeout)
    try:
        with timed_call(proxy, service, method):
            return getattr(proxy, method)(*args, **kwargs)
    except eventlet.Timeout as exc:
        if exc is not timer:
            raise
        raise ApiError(503, f"The {service} service did not answer within {timeout:g} s.") from None
    except UnknownService:
        raise ApiError(503, f"The {service} service is not running.") from None
    except (OperationalError, ConnectionError, OSError):
        raise ApiError(503, "The message broker cannot be reached.") from None
    except DatabaseUnavailable:
        raise ApiError(503, f"The {service} service cannot reach its database now.") from None
    except RemoteError as exc:
        # Not a client mistake: a bug or an outage inside the service.
        raise ApiError(500, f"The {service} service failed ({exc.exc_type}).") from None
    finally:
        timer.cancel()
