from crm_common.errors import Conflict, NotFound, ValidationFailed


class CustomerNotFound(NotFound):
    pass


class DuplicateCustomer(Conflict):
    """A likely duplicate exists; `details["existing_id"]` names it."""


class InvalidCustomer(ValidationFailed):
    pass
