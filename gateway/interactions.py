"""/api/v1/interactions, /feedback and /tickets: contacts, feedback, the ticket workflow."""

from gateway import schemas
from gateway.customers import canonical_id
from gateway.http import api, read_json, read_optional_json, read_query, rpc_ready

INTERACTIONS = "/api/v1/interactions"
FEEDBACK = "/api/v1/feedback"
TICKETS = "/api/v1/tickets"


class InteractionEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it.

    The caller's token names the actor: who logged an interaction, who took a ticket step.
    """

    @api("POST", INTERACTIONS)
    def log_interaction(self, request):
        principal = self.authenticate(request, "interactions:write")
        payload = rpc_ready(read_json(request, schemas.InteractionCreate()))
        logged = self.rpc("interactions", "log_interaction", payload, principal.subject)
        return 201, logged, {"Location": f"{INTERACTIONS}/{logged['id']}"}

    @api("GET", INTERACTIONS)
    def list_interactions(self, request):
        """Newest first; `customer_id`, `deal_id`, `channel`, `owner`, `limit`, `cursor`."""
        self.authenticate(request, "interactions:read")
        query = rpc_ready(read_query(request, schemas.InteractionList()))
        return self.rpc("interactions", "list_interactions", query)

    @api("GET", f"{INTERACTIONS}/<string:interaction_id>")
    def get_interaction(self, request, interaction_id):
        self.authenticate(request, "interactions:read")
        return self.rpc(
            "interactions", "get_interaction", canonical_id(interaction_id, "interaction")
        )

    @api("POST", FEEDBACK)
    def submit_feedback(self, request):
        """Feedback; a complaint answers with the ticket it opened (`ticket`)."""
        principal = self.authenticate(request, "interactions:write")
        payload = rpc_ready(read_json(request, schemas.FeedbackCreate()))
        return 201, self.rpc("interactions", "submit_feedback", payload, principal.subject)

    @api("POST", TICKETS)
    def open_ticket(self, request):
        principal = self.authenticate(request, "tickets:write")
        payload = rpc_ready(read_json(request, schemas.TicketCreate()))
        ticket = self.rpc("interactions", "open_ticket", payload, principal.subject)
        return 201, ticket, {"Location": f"{TICKETS}/{ticket['id']}"}

    @api("GET", TICKETS)
    def list_tickets(self, request):
        """Newest first; `status`, `assignee`, `customer_id`, `priority`, `limit`, `cursor`."""
        self.authenticate(request, "tickets:read")
        query = rpc_ready(read_query(request, schemas.TicketList()))
        return self.rpc("interactions", "list_tickets", query)

    @api("GET", f"{TICKETS}/<string:ticket_id>")
    def get_ticket(self, request, ticket_id):
        """One ticket with its history (each step's actor and time) and satisfaction answer."""
        self.authenticate(request, "tickets:read")
        return self.rpc("interactions", "get_ticket", canonical_id(ticket_id, "ticket"))

    @api("POST", f"{TICKETS}/<string:ticket_id>/assign")
    def assign_ticket(self, request, ticket_id):
        """`{"assignee", "note"?}`; also reassigns a ticket not resolved yet."""
        return self._ticket_step(request, ticket_id, "assign", schemas.TicketAssignBody())

    @api("POST", f"{TICKETS}/<string:ticket_id>/respond")
    def respond_ticket(self, request, ticket_id):
        return self._ticket_step(request, ticket_id, "respond", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<string:ticket_id>/resolve")
    def resolve_ticket(self, request, ticket_id):
        return self._ticket_step(request, ticket_id, "resolve", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<string:ticket_id>/close")
    def close_ticket(self, request, ticket_id):
        return self._ticket_step(request, ticket_id, "close", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<string:ticket_id>/reopen")
    def reopen_ticket(self, request, ticket_id):
        return self._ticket_step(request, ticket_id, "reopen", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<string:ticket_id>/satisfaction")
    def record_satisfaction(self, request, ticket_id):
        """`{"score": 1..5, "comment"?}`, once, for a resolved or closed ticket."""
        principal = self.authenticate(request, "tickets:write")
        ticket_id = canonical_id(ticket_id, "ticket")
        payload = read_json(request, schemas.SatisfactionBody())
        answer = self.rpc(
            "interactions", "record_satisfaction", ticket_id, payload, principal.subject
        )
        return 201, answer

    def _ticket_step(self, request, ticket_id, step, schema):
        """A workflow step; its body (a note, an assignee) may be left out where optional."""
        principal = self.authenticate(request, "tickets:write")
        ticket_id = canonical_id(ticket_id, "ticket")
        payload = read_optional_json(request, schema)
        return self.rpc("interactions", "ticket_step", ticket_id, step, payload, principal.subject)
