"""/api/v1/pipelines and /api/v1/deals: the sales funnel."""

from gateway import answers, schemas
from gateway.customers import canonical_id
from gateway.http import api, read_json, read_optional_json, read_query, rpc_ready

PIPELINES = "/api/v1/pipelines"
DEALS = "/api/v1/deals"


class DealEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it.

    A sales token creates deals in its own name and changes only its own:
    the pipeline service checks that against the `actor` sent with each write.
    """

    @api("GET", PIPELINES, query=schemas.StrictSchema, answers={200: answers.PipelineList})
    def list_pipelines(self, request):
        """Every pipeline, the default first, each with its stages in order."""
        self.authenticate(request, "deals:read")
        read_query(request, schemas.StrictSchema())
        return self.rpc("pipeline", "list_pipelines", confirm=False)

    @api(
        "POST",
        PIPELINES,
        body=schemas.PipelineCreate,
        answers={201: answers.Pipeline},
        location=True,
        errors=(409,),
    )
    def create_pipeline(self, request):
        """Create a pipeline from its open stages in order; `won` and `lost` are added.

        409 for a name another pipeline has.
        """
        self.authenticate(request, "pipelines:write")
        pipeline = self.rpc(
            "pipeline", "create_pipeline", rpc_ready(read_json(request, schemas.PipelineCreate()))
        )
        return 201, pipeline, {"Location": f"{PIPELINES}/{pipeline['id']}"}

    @api("GET", f"{PIPELINES}/<id:pipeline_id>", answers={200: answers.Pipeline})
    def get_pipeline(self, request, pipeline_id):
        """One pipeline with its stages in order."""
        self.authenticate(request, "deals:read")
        return self.rpc(
            "pipeline", "get_pipeline", canonical_id(pipeline_id, "pipeline"), confirm=False
        )

    @api(
        "PATCH",
        f"{PIPELINES}/<id:pipeline_id>",
        body=schemas.PipelinePatch,
        answers={200: answers.Pipeline},
        errors=(409,),
    )
    def update_pipeline(self, request, pipeline_id):
        """Rename; add, rename, reorder or remove open stages (ids keep their history).

        `stages` lists the open stages in their new order: one with its `id` is renamed
        or moved, one without is added, one left out is removed (409 while open deals
        are in it). 409 for a name another pipeline has.
        """
        self.authenticate(request, "pipelines:write")
        payload = rpc_ready(read_json(request, schemas.PipelinePatch()))
        return self.rpc(
            "pipeline", "update_pipeline", canonical_id(pipeline_id, "pipeline"), payload
        )

    @api(
        "POST",
        DEALS,
        body=schemas.DealCreate,
        answers={201: answers.Deal},
        location=True,
        errors=(404,),
    )
    def create_deal(self, request):
        """Create a deal, in the default pipeline's first stage unless told otherwise.

        The owner is the caller unless given; a sales token creates deals only in its
        own name. The customer must exist (400 otherwise).
        """
        principal = self.authenticate(request, "deals:write")
        payload = rpc_ready(read_json(request, schemas.DealCreate()))
        deal = self.rpc("pipeline", "create_deal", payload, principal.actor)
        return 201, deal, {"Location": f"{DEALS}/{deal['id']}"}

    @api("GET", DEALS, query=schemas.DealList, answers={200: answers.DealPage})
    def list_deals(self, request):
        """Deals, newest first; a merged customer's id lists its survivor's deals."""
        self.authenticate(request, "deals:read")
        query = rpc_ready(read_query(request, schemas.DealList()))
        return self.rpc("pipeline", "list_deals", query, confirm=False)

    @api("GET", f"{DEALS}/<id:deal_id>", answers={200: answers.Deal})
    def get_deal(self, request, deal_id):
        """One deal."""
        self.authenticate(request, "deals:read")
        return self.rpc("pipeline", "get_deal", canonical_id(deal_id, "deal"), confirm=False)

    @api("GET", f"{DEALS}/<id:deal_id>/history", answers={200: answers.DealHistory})
    def deal_history(self, request, deal_id):
        """Every step of the deal: created, moved, won, lost, reopened; by whom, when, dwell."""
        self.authenticate(request, "deals:read")
        return self.rpc("pipeline", "deal_history", canonical_id(deal_id, "deal"), confirm=False)

    @api(
        "PATCH",
        f"{DEALS}/<id:deal_id>",
        body=schemas.DealPatch,
        answers={200: answers.Deal},
        errors=(409,),
    )
    def update_deal(self, request, deal_id):
        """Change the fields sent; a sales token changes only the deals it owns."""
        principal = self.authenticate(request, "deals:write")
        payload = rpc_ready(read_json(request, schemas.DealPatch()))
        return self.rpc(
            "pipeline", "update_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )

    @api(
        "POST",
        f"{DEALS}/<id:deal_id>/stage",
        body=schemas.DealMove,
        answers={200: answers.Deal},
        errors=(409, 422),
    )
    def move_deal(self, request, deal_id):
        """Move an open deal to another open stage; 422 for a closed deal or `won`/`lost`."""
        principal = self.authenticate(request, "deals:write")
        payload = read_json(request, schemas.DealMove())
        return self.rpc(
            "pipeline", "move_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )

    @api(
        "POST",
        f"{DEALS}/<id:deal_id>/won",
        body=schemas.StrictSchema,
        body_optional=True,
        answers={200: answers.Deal},
        errors=(409, 422),
    )
    def win_deal(self, request, deal_id):
        """Close a deal as won; 422 if it is closed already."""
        principal = self.authenticate(request, "deals:write")
        read_optional_json(request, schemas.StrictSchema())
        return self.rpc("pipeline", "win_deal", canonical_id(deal_id, "deal"), principal.actor)

    @api(
        "POST",
        f"{DEALS}/<id:deal_id>/lost",
        body=schemas.DealLost,
        answers={200: answers.Deal},
        errors=(409, 422),
    )
    def lose_deal(self, request, deal_id):
        """Close a deal as lost, with the reason; 422 if it is closed already."""
        principal = self.authenticate(request, "deals:write")
        payload = read_json(request, schemas.DealLost())
        return self.rpc(
            "pipeline", "lose_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )

    @api(
        "POST",
        f"{DEALS}/<id:deal_id>/reopen",
        body=schemas.DealReopen,
        body_optional=True,
        answers={200: answers.Deal},
        errors=(409, 422),
    )
    def reopen_deal(self, request, deal_id):
        """Open a won or lost deal again: `{"stage": ...}`, or the stage it closed from."""
        principal = self.authenticate(request, "deals:write")
        payload = read_optional_json(request, schemas.DealReopen())
        return self.rpc(
            "pipeline", "reopen_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )
