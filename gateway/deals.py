"""/api/v1/pipelines and /api/v1/deals: the sales funnel."""

from gateway import schemas
from gateway.customers import canonical_id
from gateway.http import api, read_json, read_optional_json, read_query, rpc_ready

PIPELINES = "/api/v1/pipelines"
DEALS = "/api/v1/deals"


class DealEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it.

    A sales token creates deals in its own name and changes only its own:
    the pipeline service checks that against the `actor` sent with each write.
    """

    @api("GET", PIPELINES)
    def list_pipelines(self, request):
        self.authenticate(request, "deals:read")
        read_query(request, schemas.StrictSchema())
        return self.rpc("pipeline", "list_pipelines")

    @api("POST", PIPELINES)
    def create_pipeline(self, request):
        self.authenticate(request, "pipelines:write")
        pipeline = self.rpc(
            "pipeline", "create_pipeline", rpc_ready(read_json(request, schemas.PipelineCreate()))
        )
        return 201, pipeline, {"Location": f"{PIPELINES}/{pipeline['id']}"}

    @api("GET", f"{PIPELINES}/<string:pipeline_id>")
    def get_pipeline(self, request, pipeline_id):
        self.authenticate(request, "deals:read")
        return self.rpc("pipeline", "get_pipeline", canonical_id(pipeline_id, "pipeline"))

    @api("PATCH", f"{PIPELINES}/<string:pipeline_id>")
    def update_pipeline(self, request, pipeline_id):
        """Rename; add, rename, reorder or remove open stages (ids keep their history)."""
        self.authenticate(request, "pipelines:write")
        payload = rpc_ready(read_json(request, schemas.PipelinePatch()))
        return self.rpc(
            "pipeline", "update_pipeline", canonical_id(pipeline_id, "pipeline"), payload
        )

    @api("POST", DEALS)
    def create_deal(self, request):
        principal = self.authenticate(request, "deals:write")
        payload = rpc_ready(read_json(request, schemas.DealCreate()))
        deal = self.rpc("pipeline", "create_deal", payload, principal.actor)
        return 201, deal, {"Location": f"{DEALS}/{deal['id']}"}

    @api("GET", DEALS)
    def list_deals(self, request):
        self.authenticate(request, "deals:read")
        query = rpc_ready(read_query(request, schemas.DealList()))
        return self.rpc("pipeline", "list_deals", query)

    @api("GET", f"{DEALS}/<string:deal_id>")
    def get_deal(self, request, deal_id):
        self.authenticate(request, "deals:read")
        return self.rpc("pipeline", "get_deal", canonical_id(deal_id, "deal"))

    @api("GET", f"{DEALS}/<string:deal_id>/history")
    def deal_history(self, request, deal_id):
        """Every step of the deal: created, moved, won, lost, reopened; by whom, when, dwell."""
        self.authenticate(request, "deals:read")
        return self.rpc("pipeline", "deal_history", canonical_id(deal_id, "deal"))

    @api("PATCH", f"{DEALS}/<string:deal_id>")
    def update_deal(self, request, deal_id):
        principal = self.authenticate(request, "deals:write")
        payload = rpc_ready(read_json(request, schemas.DealPatch()))
        return self.rpc(
            "pipeline", "update_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )

    @api("POST", f"{DEALS}/<string:deal_id>/stage")
    def move_deal(self, request, deal_id):
        principal = self.authenticate(request, "deals:write")
        payload = read_json(request, schemas.DealMove())
        return self.rpc(
            "pipeline", "move_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )

    @api("POST", f"{DEALS}/<string:deal_id>/won")
    def win_deal(self, request, deal_id):
        principal = self.authenticate(request, "deals:write")
        read_optional_json(request, schemas.StrictSchema())
        return self.rpc("pipeline", "win_deal", canonical_id(deal_id, "deal"), principal.actor)

    @api("POST", f"{DEALS}/<string:deal_id>/lost")
    def lose_deal(self, request, deal_id):
        principal = self.authenticate(request, "deals:write")
        payload = read_json(request, schemas.DealLost())
        return self.rpc(
            "pipeline", "lose_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )

    @api("POST", f"{DEALS}/<string:deal_id>/reopen")
    def reopen_deal(self, request, deal_id):
        """Open a won or lost deal again: `{"stage": ...}`, or the stage it closed from."""
        principal = self.authenticate(request, "deals:write")
        payload = read_optional_json(request, schemas.DealReopen())
        return self.rpc(
            "pipeline", "reopen_deal", canonical_id(deal_id, "deal"), payload, principal.actor
        )
