"""Generated event histories for the reports benchmark: customers, deals, interactions, tickets.

Deterministic for a seed. Events are built as their producers build them
(the envelope of crm_common.envelope, the `data` described in each
producer's events.py), spread over the two years before `now`, so that the
views, segments and time filters look as they would in a real system.
"""

import random
import uuid
from datetime import timedelta

from crm_common.envelope import make_envelope

PIPELINE_ID = str(uuid.uuid5(uuid.NAMESPACE_URL, "crm-bench:pipeline:sales"))
# The default pipeline (services/pipeline migration 0002): name, kind, probability.
STAGES = tuple(
    {
        "stage_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"crm-bench:stage:{name}")),
        "name": name,
        "kind": kind,
        "probability": probability,
        "position": position,
    }
    for position, (name, kind, probability) in enumerate(
        (
            ("lead", "open", 0.1),
            ("qualified", "open", 0.25),
            ("proposal", "open", 0.5),
            ("negotiation", "open", 0.75),
            ("won", "won", 1.0),
            ("lost", "lost", 0.0),
        )
    )
)
OPEN_STAGES = STAGES[:4]
WON_STAGE, LOST_STAGE = STAGES[4], STAGES[5]
OWNERS = tuple(f"owner-{number}" for number in range(20))
AGENTS = tuple(f"agent-{number}" for number in range(12))
CHANNELS = ("call", "email", "meeting", "social", "note")
TICKET_CHANNELS = ("email", "phone", "web", "chat")
PRIORITIES = ("low", "normal", "normal", "normal", "high", "urgent")
LOST_REASONS = ("price", "timing", "competitor", "no budget", "no answer")
HISTORY_DAYS = 730
# Chances at each open stage: the deal moves on, is lost there, or stays (what remains).
ADVANCE, LOSE = 0.62, 0.22
MEAN_DWELL_DAYS = 9
# The tickets' SLA targets (the normal priority's defaults), from opening.
RESPONSE_HOURS, RESOLUTION_HOURS = 4, 24


class History:
    """Events of customers, and of deals, interactions and tickets of theirs, up to `now`.

    `customers` are (customer_id, created_at) of customers that exist already;
    customer_events adds more.
    """

    def __init__(self, now, seed=11, customers=()):
        self.now = now
        self.rng = random.Random(seed)
        self.customers = list(customers)

    def uuid(self):
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def moment_after(self, start):
        """A time between `start` and now, later times a little likelier (a growing business)."""
        span = (self.now - start).total_seconds()
        return start + timedelta(seconds=span * self.rng.random() ** 0.8)

    def event(self, producer, event_type, aggregate_id, sequence, at, data):
        return make_envelope(
            event_type=event_type,
            producer=producer,
            aggregate_id=aggregate_id,
            sequence=sequence,
            data=data,
            occurred_at=at,
            event_id=self.uuid(),
            check=False,  # loaded against the reports' schemas when applied
        )

    def customer(self):
        return self.rng.choice(self.customers)

    def customer_events(self, customers):
        """customer_created of new customers (before other events: those pick from them)."""
        start = self.now - timedelta(days=HISTORY_DAYS)
        for _ in range(customers):
            customer_id, created_at = self.uuid(), self.moment_after(start)
            self.customers.append((customer_id, created_at))
            yield self.event(
                "customers",
                "customer_created",
                customer_id,
                1,
                created_at,
                {
                    "customer_id": customer_id,
                    "name": f"Customer {len(self.customers)}",
                    "status": self.rng.choice(("lead", "prospect", "customer")),
                    "owner": self.rng.choice(OWNERS),
                    "created_at": created_at.isoformat(),
                },
            )

    def streams(self, sizes):
        """Every kind of event at `sizes`, in the order to apply them: deals and tickets
        come as one list of events each."""
        return {
            "pipeline": self.pipeline_events(),
            "customers": self.customer_events(sizes["customers"]),
            "deals": self.deal_events(sizes["deals"]),
            "interactions": self.interaction_events(sizes["interactions"]),
            "tickets": self.ticket_events(sizes["tickets"]),
        }

    def pipeline_events(self):
        yield self.event(
            "pipeline",
            "pipeline_created",
            PIPELINE_ID,
            1,
            self.now - timedelta(days=HISTORY_DAYS + 1),
            {
                "pipeline_id": PIPELINE_ID,
                "name": "Sales",
                "is_default": True,
                "stages": [dict(stage) for stage in STAGES],
            },
        )

    def deal_events(self, deals):
        """Each deal's whole history, one list per deal: created, moves, then won or lost (or
        still open where time ran out), every event with the deal as it stands after it."""
        for _ in range(deals):
            yield self.one_deal()

    def one_deal(self):
        rng = self.rng
        customer_id, since = self.customer()
        deal_id, at = self.uuid(), self.moment_after(since)
        deal = {
            "deal_id": deal_id,
            "customer_id": customer_id,
            "pipeline_id": PIPELINE_ID,
            "title": f"Deal {deal_id[:8]}",
            "amount": f"{rng.lognormvariate(8.5, 1.0):.2f}",
            "currency": "EUR" if rng.random() < 0.2 else "USD",
            "owner": rng.choice(OWNERS) if rng.random() < 0.97 else None,
            "expected_close_date": (at + timedelta(days=rng.randint(20, 150))).date().isoformat()
            if rng.random() < 0.85
            else None,
            "created_at": at.isoformat(),
            "closed_at": None,
            "status": "open",
        }
        stage = OPEN_STAGES[0]
        events = [
            self.event("pipeline", "deal_created", deal_id, 1, at, self._deal_data(deal, stage))
        ]
        while True:
            left = at + timedelta(days=rng.expovariate(1 / MEAN_DWELL_DAYS))
            if left >= self.now:
                return events  # still open in this stage
            dwell = int((left - at).total_seconds())
            step = rng.random()
            last_open = stage is OPEN_STAGES[-1]
            if step < LOSE:
                target, event_type = LOST_STAGE, "deal_lost"
            elif step < LOSE + ADVANCE:
                target = WON_STAGE if last_open else OPEN_STAGES[stage["position"] + 1]
                event_type = "deal_won" if last_open else "deal_stage_changed"
            else:
                return events  # stalled: still open
            at, previous, stage = left, stage, target
            data = self._deal_data(deal, stage, at if target["kind"] != "open" else None)
            data.update(
                from_stage=previous["name"], from_stage_id=previous["stage_id"], dwell_seconds=dwell
            )
            if event_type == "deal_stage_changed":
                data.update(
                    to_stage=stage["name"],
                    to_stage_id=stage["stage_id"],
                    probability=stage["probability"],
                )
            elif event_type == "deal_won":
                data["won_at"] = at.isoformat()
            else:
                data.update(lost_at=at.isoformat(), reason=rng.choice(LOST_REASONS))
            events.append(self.event("pipeline", event_type, deal_id, len(events) + 1, at, data))
            if target["kind"] != "open":
                return events

    def _deal_data(self, deal, stage, closed_at=None):
        if closed_at is not None:
            deal.update(status=stage["kind"], closed_at=closed_at.isoformat())
        state = {
            **deal,
            "stage_id": stage["stage_id"],
            "stage": stage["name"],
            "probability": stage["probability"],
        }
        return {"deal_id": deal["deal_id"], "deal": state, "by": deal["owner"]}

    def interaction_events(self, interactions):
        for _ in range(interactions):
            customer_id, since = self.customer()
            interaction_id, at = self.uuid(), self.moment_after(since)
            yield self.event(
                "interactions",
                "interaction_logged",
                interaction_id,
                1,
                at,
                {
                    "interaction_id": interaction_id,
                    "customer_id": customer_id,
                    "deal_id": None,
                    "channel": self.rng.choice(CHANNELS),
                    "direction": self.rng.choice(("inbound", "outbound")),
                    "subject": "Follow-up",
                    "outcome": None,
                    "owner": self.rng.choice(OWNERS),
                    "occurred_at": at.isoformat(),
                    "logged_by": None,
                },
            )

    def ticket_events(self, tickets):
        """Each ticket's story, one list per ticket: opened, assigned, responded, resolved,
        closed, now and then an SLA breach, and a satisfaction answer for most."""
        for _ in range(tickets):
            yield self.one_ticket()

    def one_ticket(self):
        rng = self.rng
        customer_id, since = self.customer()
        ticket_id, opened_at = self.uuid(), self.moment_after(since)
        common = {
            "ticket_id": ticket_id,
            "customer_id": customer_id,
            "priority": rng.choice(PRIORITIES),
            "channel": rng.choice(TICKET_CHANNELS),
        }
        events = []

        def emit(event_type, at, **data):
            if at < self.now:
                events.append(
                    self.event("interactions", event_type, ticket_id, len(events) + 1, at, data)
                )
            return at < self.now

        emit(
            "ticket_opened",
            opened_at,
            **common,
            subject="Something is wrong",
            feedback_id=None,
            opened_by=None,
            opened_at=opened_at.isoformat(),
            response_due_at=(opened_at + timedelta(hours=RESPONSE_HOURS)).isoformat(),
            resolution_due_at=(opened_at + timedelta(hours=RESOLUTION_HOURS)).isoformat(),
        )
        step = {**common, "by": None, "note": None}
        agent = rng.choice(AGENTS)
        assigned_at = opened_at + timedelta(minutes=rng.expovariate(1 / 30))
        if not emit(
            "ticket_assigned",
            assigned_at,
            **step,
            assignee=agent,
            previous_assignee=None,
            assigned_at=assigned_at.isoformat(),
        ):
            return events
        step["assignee"] = agent

        def breach(kind, hours, seconds):
            """ticket_sla_breached when the step came `hours` or more after opening."""
            due = opened_at + timedelta(hours=hours)
            if seconds > hours * 3600:
                emit(
                    "ticket_sla_breached",
                    due,
                    **common,
                    kind=kind,
                    due_at=due.isoformat(),
                    breached_at=due.isoformat(),
                    assignee=agent,
                )

        responded_at = assigned_at + timedelta(seconds=rng.expovariate(1 / 5400))
        response = (responded_at - opened_at).total_seconds()
        breach("first_response", RESPONSE_HOURS, response)
        if not emit(
            "ticket_responded",
            responded_at,
            **step,
            first=True,
            responded_at=responded_at.isoformat(),
            seconds_since_open=response,
        ):
            return events
        resolved_at = responded_at + timedelta(seconds=rng.expovariate(1 / 40000))
        resolution = (resolved_at - opened_at).total_seconds()
        breach("resolution", RESOLUTION_HOURS, resolution)
        if not emit(
            "ticket_resolved",
            resolved_at,
            **step,
            resolved_at=resolved_at.isoformat(),
            resolution_seconds=resolution,
            first_response_seconds=response,
            survey_due=True,
        ):
            return events
        if rng.random() < 0.6:
            recorded_at = resolved_at + timedelta(hours=rng.expovariate(1 / 20))
            emit(
                "satisfaction_recorded",
                recorded_at,
                satisfaction_id=self.uuid(),
                ticket_id=ticket_id,
                customer_id=customer_id,
                score=rng.choices((1, 2, 3, 4, 5), weights=(5, 7, 15, 35, 38))[0],
                comment=None,
                agent=agent,
                channel=common["channel"],
                priority=common["priority"],
                recorded_at=recorded_at.isoformat(),
            )
        closed_at = resolved_at + timedelta(days=2)
        emit("ticket_closed", closed_at, **step, closed_at=closed_at.isoformat())
        return events
