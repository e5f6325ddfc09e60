from crm_common.errors import Conflict, InvalidTransition, NotFound, ValidationFailed


class CustomerNotFound(NotFound):
    pass


class DuplicateCustomer(Conflict):
    """A likely duplicate exists; `details` names it (`existing_id`, `score`, `matched`)."""


class ConcurrentUpdate(Conflict):
    """Someone else changed the customer meanwhile; read it again and retry."""


class CustomerGone(InvalidTransition):
    """The customer was merged into another or erased: it takes no more changes."""


class InvalidCustomer(ValidationFailed):
    pass


class InvalidImport(ValidationFailed):
    """The file as a whole cannot be imported (encoding, header, mapping); nothing was written."""
