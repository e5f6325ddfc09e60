from crm_common.errors import Conflict, InvalidTransition, NotFound, ValidationFailed


class InvalidInput(ValidationFailed):
    """The request breaks the interactions service's schema or rules; `fields` says where."""


class UnknownDeal(ValidationFailed):
    """The deal named does not exist, or belongs to another customer."""


class InteractionNotFound(NotFound):
    pass


class TicketNotFound(NotFound):
    pass


class InvalidTicketStep(InvalidTransition):
    """The ticket's status does not allow that step; `details` names status and step."""


class SatisfactionAlreadyRecorded(Conflict):
    """A ticket takes one satisfaction answer; `details` names the existing one."""
