from crm_common.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed


class InvalidDeal(ValidationFailed):
    pass


class InvalidPipeline(ValidationFailed):
    pass


class DealNotFound(NotFound):
    pass


class PipelineNotFound(NotFound):
    pass


class InvalidStageTransition(InvalidTransition):
    """The deal's status or stage does not allow that step (a closed deal moves nowhere)."""


class StageInUse(Conflict):
    """A stage with open deals cannot be removed from its pipeline."""


class ConcurrentDealUpdate(Conflict):
    """Someone else changed the deal meanwhile; read it again and retry."""


class NotDealOwner(Forbidden):
    """The caller may change only the deals it owns."""


class PipelineNameTaken(Conflict):
    pass


class ConcurrentPipelineUpdate(Conflict):
    """Someone else changed the pipeline meanwhile; read it again and retry."""
