"""Errors a service raises for its callers' mistakes.

Each service names its own (`CustomerNotFound(NotFound)`, ...) in its
`exceptions.py` and lists them in `expected_exceptions`. The arguments stay
JSON-friendly (message, field errors, details) because Nameko sends
`exc.args` back to the caller, where the gateway turns them into the API's
error shape through its one table of remote errors.
"""


class ServiceError(Exception):
    def __init__(self, message, fields=None, details=None):
        super().__init__(message, fields or {}, details or {})

    @property
    def message(self):
        return self.args[0]

    @property
    def fields(self):
        return self.args[1]

    @property
    def details(self):
        return self.args[2]

    def __str__(self):
        return self.message


class ValidationFailed(ServiceError):
    """The input breaks the service's schema or rules; `fields` says where."""


class NotFound(ServiceError):
    """No record with that id."""


class Conflict(ServiceError):
    """The write would clash with existing data; `details` names it."""


class InvalidTransition(ServiceError):
    """The record's state does not allow that step."""


class Unavailable(ServiceError):
    """Something the service depends on (another service, its database) cannot answer now."""


class Forbidden(ServiceError):
    """The caller may not do this to this record (not its owner, for one)."""
