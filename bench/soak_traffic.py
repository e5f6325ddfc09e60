"""The soak run's mixed traffic: what a CRM's clients do all day, one request at a time.

Customers are created; deals are opened for them, moved along the default pipeline's
stages and won or lost; calls, emails and meetings are logged; feedback arrives (a
complaint opens a ticket); tickets go through their workflow (assigned, responded,
resolved, rated, closed). Requests fire on an open-loop schedule, so several may be in
flight at once: a deal or ticket with a request in flight is not picked again until it
is answered, so no two requests race on one record and every answer should be a 2xx.
A record whose request failed is not touched again.
"""

from dataclasses import dataclass, field

STAGES = ("lead", "qualified", "proposal", "negotiation")
TICKET_STEPS = ("assign", "respond", "resolve", "satisfaction", "close")
AGENTS = tuple(f"agent-{n}" for n in range(4))
OWNERS = tuple(f"rep-{n}" for n in range(5))
CHANNELS = ("call", "email", "meeting")
FEEDBACK = ("praise", "suggestion", "complaint")
# Relative weight of each action, when it can be taken.
WEIGHTS = {
    "customer": 12,
    "deal": 14,
    "advance": 22,
    "interaction": 18,
    "feedback": 6,
    "ticket": 8,
    "ticket_step": 20,
}


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: dict
    action: str
    record: str | None = None  # the deal or ticket it is about, busy until answered


@dataclass
class Workload:
    """The records made so far and where each stands; `next` picks a request, `answered`
    takes its answer in."""

    rng: object
    customers: list = field(default_factory=list)
    deals: dict = field(default_factory=dict)  # open deal id: index in STAGES
    tickets: dict = field(default_factory=dict)  # ticket id: index of its next step
    busy: set = field(default_factory=set)
    made: int = 0

    def possible(self):
        free_deals = any(deal not in self.busy for deal in self.deals)
        free_tickets = any(ticket not in self.busy for ticket in self.tickets)
        needs_customer = {"deal", "interaction", "feedback", "ticket"}
        return [
            action
            for action in WEIGHTS
            if (action not in needs_customer or self.customers)
            and (action != "advance" or free_deals)
            and (action != "ticket_step" or free_tickets)
        ]

    def next(self):
        actions = self.possible()
        action = self.rng.choices(actions, weights=[WEIGHTS[a] for a in actions])[0]
        self.made += 1
        request = getattr(self, f"_{action}")()
        if request.record:
            self.busy.add(request.record)
        return request

    def answered(self, request, status, body):
        self.busy.discard(request.record)
        if not 200 <= status < 300:
            # A 503 may come after the service did the work: where the record stands is
            # unknown, so it is left alone from now on rather than sent a step that fails.
            self.deals.pop(request.record, None)
            self.tickets.pop(request.record, None)
            return
        if request.action == "customer":
            self.customers.append(body["id"])
        elif request.action == "deal":
            self.deals[body["id"]] = 0
        elif request.action == "ticket":
            self.tickets[body["id"]] = 0
        elif request.action == "advance":
            if request.path.endswith(("/won", "/lost")):
                del self.deals[request.record]
            else:
                self.deals[request.record] += 1
        elif request.action == "ticket_step":
            self.tickets[request.record] += 1
            if self.tickets[request.record] == len(TICKET_STEPS):
                del self.tickets[request.record]

    def _customer(self):
        number = self.made
        body = {
            "name": f"Soak Customer {number}",
            "email": f"soak.{number}@example.com",
            "owner": self.rng.choice(OWNERS),
        }
        return Request("POST", "/api/v1/customers", body, "customer")

    def _deal(self):
        body = {
            "customer_id": self.rng.choice(self.customers),
            "title": f"Soak deal {self.made}",
            "amount": f"{self.rng.randrange(500, 50_000)}.00",
            "currency": self.rng.choice(("EUR", "USD")),
            "owner": self.rng.choice(OWNERS),
        }
        return Request("POST", "/api/v1/deals", body, "deal")

    def _advance(self):
        deal = self.rng.choice([deal for deal in self.deals if deal not in self.busy])
        stage = self.deals[deal]
        path = f"/api/v1/deals/{deal}"
        roll = self.rng.random()
        if stage == len(STAGES) - 1 or roll < 0.1:
            if roll < 0.5:
                return Request("POST", f"{path}/won", {}, "advance", deal)
            return Request("POST", f"{path}/lost", {"reason": "price"}, "advance", deal)
        return Request("POST", f"{path}/stage", {"stage": STAGES[stage + 1]}, "advance", deal)

    def _interaction(self):
        body = {
            "customer_id": self.rng.choice(self.customers),
            "channel": self.rng.choice(CHANNELS),
            "direction": self.rng.choice(("inbound", "outbound")),
            "owner": self.rng.choice(OWNERS),
        }
        return Request("POST", "/api/v1/interactions", body, "interaction")

    def _feedback(self):
        body = {
            "customer_id": self.rng.choice(self.customers),
            "kind": self.rng.choice(FEEDBACK),
            "text": "Soak feedback",
        }
        return Request("POST", "/api/v1/feedback", body, "feedback")

    def _ticket(self):
        body = {"customer_id": self.rng.choice(self.customers), "subject": "Soak ticket"}
        return Request("POST", "/api/v1/tickets", body, "ticket")

    def _ticket_step(self):
        ticket = self.rng.choice([ticket for ticket in self.tickets if ticket not in self.busy])
        step = TICKET_STEPS[self.tickets[ticket]]
        body = {
            "assign": {"assignee": self.rng.choice(AGENTS)},
            "satisfaction": {"score": self.rng.randint(1, 5)},
        }.get(step, {})
        return Request("POST", f"/api/v1/tickets/{ticket}/{step}", body, "ticket_step", ticket)
