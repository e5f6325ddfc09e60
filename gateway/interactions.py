"""/api/v1/interactions, /feedback and /tickets: contacts, feedback, the ticket workflow."""

from gateway import answers, schemas
from gateway.customers import canonical_id
from gateway.http import api, read_json, read_optional_json, read_query, rpc_ready

INTERACTIONS = "/api/v1/interactions"
FEEDBACK = "/api/v1/feedback"
TICKETS = "/api/v1/tickets"
# A workflow step answers the ticket; a step out of order is a 422.
STEP = {"answers": {200: answers.Ticket}, "errors": (409, 422)}
OPTIONAL_STEP = {"body": schemas.TicketStepBody, "body_optional": True, **STEP}


class InteractionEndpoints:
    """Mixed into the gateway service: `self.rpc` and `self.authenticate` come from it.

    The caller's token names the actor: who logged an interaction, who took a ticket step.
    """

    @api(
        "POST",
        INTERACTIONS,
        body=schemas.InteractionCreate,
        answers={201: answers.Interaction},
        location=True,
    )
    def log_interaction(self, request):
        """Log a call, email, meeting, social message or note with a customer.

        `direction` is required for calls, emails and social messages; `occurred_at`
        defaults to now and may not be in the future; a `deal_id` must be the
        customer's. The owner is the caller unless given.
        """
        principal = self.authenticate(request, "interactions:write")
        payload = rpc_ready(read_json(request, schemas.InteractionCreate()))
        logged = self.rpc("interactions", "log_interaction", payload, principal.subject)
        return 201, logged, {"Location": f"{INTERACTIONS}/{logged['id']}"}

    @api("GET", INTERACTIONS, query=schemas.InteractionList, answers={200: answers.InteractionPage})
    def list_interactions(self, request):
        """Interactions, newest first; by customer (a merged id finds its survivor's), deal,
        channel, owner."""
        self.authenticate(request, "interactions:read")
        query = rpc_ready(read_query(request, schemas.InteractionList()))
        return self.rpc("interactions", "list_interactions", query, confirm=False)

    @api("GET", f"{INTERACTIONS}/<id:interaction_id>", answers={200: answers.Interaction})
    def get_interaction(self, request, interaction_id):
        """One interaction."""
        self.authenticate(request, "interactions:read")
        return self.rpc(
            "interactions",
            "get_interaction",
            canonical_id(interaction_id, "interaction"),
            confirm=False,
        )

    @api("POST", FEEDBACK, body=schemas.FeedbackCreate, answers={201: answers.Feedback})
    def submit_feedback(self, request):
        """Record a complaint, praise or suggestion; a complaint opens a ticket (`ticket`)."""
        principal = self.authenticate(request, "interactions:write")
        payload = rpc_ready(read_json(request, schemas.FeedbackCreate()))
        return 201, self.rpc("interactions", "submit_feedback", payload, principal.subject)

    @api("POST", TICKETS, body=schemas.TicketCreate, answers={201: answers.Ticket}, location=True)
    def open_ticket(self, request):
        """Open a ticket; its priority sets its first-response and resolution targets."""
        principal = self.authenticate(request, "tickets:write")
        payload = rpc_ready(read_json(request, schemas.TicketCreate()))
        ticket = self.rpc("interactions", "open_ticket", payload, principal.subject)
        return 201, ticket, {"Location": f"{TICKETS}/{ticket['id']}"}

    @api("GET", TICKETS, query=schemas.TicketList, answers={200: answers.TicketPage})
    def list_tickets(self, request):
        """Tickets, newest first; by status, assignee, customer, priority."""
        self.authenticate(request, "tickets:read")
        query = rpc_ready(read_query(request, schemas.TicketList()))
        return self.rpc("interactions", "list_tickets", query, confirm=False)

    @api("GET", f"{TICKETS}/<id:ticket_id>", answers={200: answers.TicketDetail})
    def get_ticket(self, request, ticket_id):
        """One ticket with its history (each step's actor and time) and satisfaction answer."""
        self.authenticate(request, "tickets:read")
        return self.rpc(
            "interactions", "get_ticket", canonical_id(ticket_id, "ticket"), confirm=False
        )

    @api("POST", f"{TICKETS}/<id:ticket_id>/assign", body=schemas.TicketAssignBody, **STEP)
    def assign_ticket(self, request, ticket_id):
        """Assign a ticket to `assignee`; also reassigns a ticket not resolved yet."""
        return self._ticket_step(request, ticket_id, "assign", schemas.TicketAssignBody())

    @api("POST", f"{TICKETS}/<id:ticket_id>/respond", **OPTIONAL_STEP)
    def respond_ticket(self, request, ticket_id):
        """Record a response to the customer (the first one stops the response clock)."""
        return self._ticket_step(request, ticket_id, "respond", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<id:ticket_id>/resolve", **OPTIONAL_STEP)
    def resolve_ticket(self, request, ticket_id):
        """Resolve a ticket; a satisfaction survey becomes due."""
        return self._ticket_step(request, ticket_id, "resolve", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<id:ticket_id>/close", **OPTIONAL_STEP)
    def close_ticket(self, request, ticket_id):
        """Close a resolved ticket."""
        return self._ticket_step(request, ticket_id, "close", schemas.TicketStepBody())

    @api("POST", f"{TICKETS}/<id:ticket_id>/reopen", **OPTIONAL_STEP)
    def reopen_ticket(self, request, ticket_id):
        """Take a resolved ticket back to `assigned`."""
        return self._ticket_step(request, ticket_id, "reopen", schemas.TicketStepBody())

    @api(
        "POST",
        f"{TICKETS}/<id:ticket_id>/satisfaction",
        body=schemas.SatisfactionBody,
        answers={201: answers.Satisfaction},
        errors=(409, 422),
    )
    def record_satisfaction(self, request, ticket_id):
        """Record the customer's satisfaction (score 1-5) with a resolved or closed ticket.

        Once per ticket: a second answer is a 409.
        """
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
