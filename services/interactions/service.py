"""The interactions service: contacts, feedback, tickets with their SLA clock, satisfaction."""

import dataclasses
import logging
import uuid

from marshmallow import ValidationError
from nameko.dependency_providers import Config
from nameko.extensions import DependencyProvider
from nameko.rpc import RpcProxy
from nameko.timer import Timer
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from crm_common import cursors
from crm_common.customer_refs import (
    CustomerErasedData,
    CustomerMergedData,
    UnknownCustomer,
    check_customer,
    current_customer,
    record_erasure,
    record_merge,
    survivor_of,
)
from crm_common.db import Database
from crm_common.envelope import utcnow
from crm_common.errors import Unavailable
from crm_common.handlers import event_handler
from crm_common.inbox import Inbox
from crm_common.outbox import Outbox
from crm_common.rpc import rpc
from crm_common.service import EventConsumer, EventProducer, ServiceBase
from services.interactions import domain, store
from services.interactions.deals import check_deal
from services.interactions.events import CATALOG
from services.interactions.exceptions import (
    InteractionNotFound,
    InvalidInput,
    InvalidTicketStep,
    SatisfactionAlreadyRecorded,
    TicketNotFound,
    UnknownDeal,
)
from services.interactions.models import (
    AppliedEvent,
    CustomerFate,
    DeadLetter,
    Feedback,
    Interaction,
    OutboxEvent,
    Satisfaction,
    Ticket,
    TicketStep,
)
from services.interactions.schemas import (
    AssignInput,
    FeedbackInput,
    FeedbackOutput,
    InteractionInput,
    InteractionOutput,
    InteractionQuery,
    SatisfactionInput,
    SatisfactionOutput,
    StepInput,
    StepOutput,
    TicketInput,
    TicketOutput,
    TicketQuery,
    TimelineQuery,
    timeline_item,
)

log = logging.getLogger(__name__)

EXPECTED = (
    InvalidInput,
    UnknownDeal,
    UnknownCustomer,
    InteractionNotFound,
    TicketNotFound,
    InvalidTicketStep,
    SatisfactionAlreadyRecorded,
    Unavailable,
)
# Breaches recorded per kind in one run of the SLA timer; the next run takes the rest.
SLA_BATCH = 500

_interaction = InteractionOutput()
_feedback = FeedbackOutput()
_ticket = TicketOutput()
_step = StepOutput()
_satisfaction = SatisfactionOutput()


def load(schema, payload):
    try:
        return schema.load(payload if payload is not None else {})
    except ValidationError as exc:
        raise InvalidInput("The request is not valid.", exc.normalized_messages()) from None


def new_id():
    return str(uuid.uuid4())


class Clock(DependencyProvider):
    """The time a worker works with: tests give the service another clock to move time."""

    def get_dependency(self, worker_ctx):
        return utcnow


class SettingTimer(Timer):
    """A timer whose interval (seconds) is a setting, read when the container starts."""

    def __init__(self, setting, **kwargs):
        self.setting = setting
        super().__init__(interval=None, **kwargs)

    def setup(self):
        self.interval = self.container.config[self.setting]


setting_timer = SettingTimer.decorator


class InteractionsService(ServiceBase, EventProducer, EventConsumer):
    name = "interactions"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)
    inbox = Inbox(AppliedEvent, DeadLetter)
    config = Config()
    clock = Clock()
    customers = RpcProxy("customers")
    pipeline = RpcProxy("pipeline")

    # --- interactions ----------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def log_interaction(self, payload, actor=None):
        """Log a call, email, meeting, social message or note; emits interaction_logged."""
        data = load(InteractionInput(), payload)
        now = self.clock()
        occurred_at = data["occurred_at"] or now
        if occurred_at > now + domain.FUTURE_TOLERANCE:
            raise InvalidInput(
                "occurred_at is in the future.",
                {"occurred_at": ["A logged interaction has happened: not in the future."]},
            )
        customer_id = self._check_customer(data["customer_id"])
        if data["deal_id"]:
            data["deal_id"] = check_deal(
                self.pipeline, self.customers, data["deal_id"], customer_id, self._timeout
            )
        interaction = Interaction(
            id=new_id(),
            customer_id=current_customer(self.db, CustomerFate, customer_id),
            deal_id=data["deal_id"],
            channel=data["channel"],
            direction=data["direction"],
            subject=data["subject"],
            body=data["body"],
            outcome=data["outcome"],
            owner=data["owner"] or actor,
            occurred_at=occurred_at,
            logged_by=actor,
            created_at=now,
            version=1,
        )
        self.db.add(interaction)
        self.outbox.add(
            self.db, "interaction_logged", interaction.id, 1, domain.interaction_logged(interaction)
        )
        self.db.commit()
        return _interaction.dump(interaction)

    @rpc(expected_exceptions=EXPECTED)
    def get_interaction(self, interaction_id):
        interaction = self._get(Interaction, interaction_id)
        if interaction is None:
            raise InteractionNotFound(
                f"No interaction {interaction_id}.", details={"id": str(interaction_id)}
            )
        return _interaction.dump(interaction)

    @rpc(expected_exceptions=EXPECTED)
    def list_interactions(self, query=None):
        """Newest first; filters customer_id, deal_id, channel, owner; `limit`, `cursor`."""
        return self._list(InteractionQuery(), query, store.interactions, _interaction)

    # --- feedback --------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def submit_feedback(self, payload, actor=None):
        """Record feedback; a complaint opens a ticket linked to it in the same transaction."""
        data = load(FeedbackInput(), payload)
        customer_id = self._check_customer(data["customer_id"])
        now = self.clock()
        complaint = data["kind"] == "complaint"
        feedback = Feedback(
            id=new_id(),
            customer_id=current_customer(self.db, CustomerFate, customer_id),
            kind=data["kind"],
            text=data["text"],
            channel=data["channel"],
            ticket_id=new_id() if complaint else None,
            received_at=now,
            received_by=actor,
            version=1,
        )
        self.db.add(feedback)
        self.outbox.add(
            self.db, "feedback_received", feedback.id, 1, domain.feedback_received(feedback)
        )
        ticket = None
        if complaint:
            ticket = self._open_ticket(
                Ticket(
                    id=feedback.ticket_id,
                    customer_id=feedback.customer_id,
                    feedback_id=feedback.id,
                    subject=domain.ticket_subject(feedback.text),
                    description=feedback.text,
                    priority=data["priority"],
                    channel=feedback.channel,
                    opened_by=actor,
                ),
                now,
            )
        self.db.commit()
        return {**_feedback.dump(feedback), "ticket": _ticket.dump(ticket) if ticket else None}

    # --- tickets ---------------------------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def open_ticket(self, payload, actor=None):
        data = load(TicketInput(), payload)
        customer_id = self._check_customer(data["customer_id"])
        ticket = Ticket(
            id=new_id(),
            customer_id=current_customer(self.db, CustomerFate, customer_id),
            subject=data["subject"],
            description=data["description"],
            priority=data["priority"],
            channel=data["channel"],
            opened_by=actor,
        )
        self._open_ticket(ticket, self.clock())
        self.db.commit()
        return _ticket.dump(ticket)

    @rpc(expected_exceptions=EXPECTED)
    def ticket_step(self, ticket_id, step, payload=None, actor=None):
        """Take one workflow step: assign, respond, resolve, close or reopen.

        `payload` is `{"note"}` (and `"assignee"` to assign); `actor` is who
        takes the step. A step the ticket's status does not allow is
        InvalidTicketStep. A step past its SLA target records the breach too.
        """
        if step not in domain.STEPS:
            raise InvalidInput(
                f"Unknown step {step!r}.", {"step": [f"One of: {', '.join(domain.STEPS)}."]}
            )
        data = load(AssignInput() if step == "assign" else StepInput(), payload)
        ticket = self._ticket(ticket_id, lock=True)
        taken, events = domain.take_step(
            ticket, step, actor, self.clock(), assignee=data.get("assignee"), note=data["note"]
        )
        self.db.add(TicketStep(ticket_id=ticket.id, **dataclasses.asdict(taken)))
        self._emit(ticket, events)
        self.db.commit()
        return _ticket.dump(ticket)

    @rpc(expected_exceptions=EXPECTED)
    def get_ticket(self, ticket_id):
        """One ticket with its history and its satisfaction answer."""
        ticket = self._ticket(ticket_id)
        steps = self.db.scalars(
            select(TicketStep).where(TicketStep.ticket_id == ticket.id).order_by(TicketStep.id)
        ).all()
        answer = self.db.scalar(select(Satisfaction).where(Satisfaction.ticket_id == ticket.id))
        return {
            **_ticket.dump(ticket),
            "history": _step.dump(steps, many=True),
            "satisfaction": _satisfaction.dump(answer) if answer else None,
        }

    @rpc(expected_exceptions=EXPECTED)
    def list_tickets(self, query=None):
        """Newest first; filters status, assignee, customer_id, priority; `limit`, `cursor`."""
        return self._list(TicketQuery(), query, store.tickets, _ticket)

    @rpc(expected_exceptions=EXPECTED)
    def record_satisfaction(self, ticket_id, payload, actor=None):
        """The customer's 1-5 answer about a resolved (or closed) ticket, once."""
        data = load(SatisfactionInput(), payload)
        ticket = self._ticket(ticket_id)
        # The customer's lock before the ticket's, in the order a merge takes them.
        current_customer(self.db, CustomerFate, ticket.customer_id)
        self.db.refresh(ticket, with_for_update=True)
        domain.check_survey(ticket)
        existing = self.db.scalar(select(Satisfaction).where(Satisfaction.ticket_id == ticket.id))
        if existing is not None:
            raise self._answered(ticket, existing.id)
        now = self.clock()
        answer = Satisfaction(
            id=new_id(),
            ticket_id=ticket.id,
            customer_id=ticket.customer_id,
            score=data["score"],
            comment=data["comment"],
            agent=ticket.assignee,
            channel=ticket.channel,
            recorded_at=now,
            recorded_by=actor,
        )
        ticket.satisfaction_score = answer.score
        ticket.survey_due_at = None
        ticket.updated_at = now
        self.db.add(answer)
        self._emit(
            ticket, [("satisfaction_recorded", domain.satisfaction_recorded(answer, ticket))]
        )
        try:
            self.db.commit()
        except IntegrityError:  # another answer won the race (SQLite has no row lock)
            self.db.rollback()
            raise self._answered(ticket, None) from None
        return _satisfaction.dump(answer)

    # --- the customer's timeline -----------------------------------------------------------

    @rpc(expected_exceptions=EXPECTED)
    def timeline(self, customer_id, limit=50, cursor=None):
        """A customer's interactions, feedback, tickets and satisfaction answers, newest first.

        `{"items": [{"kind", "id", "at", "customer_id", ...summary}], "next_cursor"}`,
        ordered by (at, kind, id) descending; `next_cursor` resumes after the last item.
        """
        params = load(
            TimelineQuery(), {"customer_id": customer_id, "limit": limit, "cursor": cursor}
        )
        after = self._after(params["cursor"], cursors.decode_mark)
        found, last = store.timeline(
            self.db,
            survivor_of(self.db, CustomerFate, params["customer_id"]),
            params["limit"],
            after,
        )
        return {
            "items": [timeline_item(kind, at, row) for kind, at, row in found],
            "next_cursor": cursors.encode_mark(*last) if last else None,
        }

    # --- the SLA clock ---------------------------------------------------------------------

    @setting_timer("CRM_SLA_CHECK_SECONDS", eager=True)
    def check_sla(self):
        """Record every SLA target passed without its step, once, and emit ticket_sla_breached.

        Each breach is its own transaction: the conditional update of the
        ticket and the event commit together, so a restart or a second
        instance neither repeats nor misses one.
        """
        now = self.clock()
        recorded = 0
        for kind in domain.BREACH_KINDS:
            ticket_ids = store.overdue(self.db, kind, now, SLA_BATCH)
            self.db.rollback()  # end the read before the writes
            for ticket_id in ticket_ids:
                ticket = store.claim_breach(self.db, ticket_id, kind, now)
                if ticket is None:
                    self.db.rollback()
                    continue
                due_at = getattr(ticket, store.SLA_CLOCKS[kind][0].key)
                self.outbox.add(
                    self.db,
                    "ticket_sla_breached",
                    ticket.id,
                    ticket.version,
                    domain.breach_data(ticket, kind, due_at, now),
                )
                self.db.commit()
                recorded += 1
                log.info("ticket %s breached its %s target", ticket.id, kind)
        return recorded

    # --- events from other services --------------------------------------------------------

    # Handler names are part of their queues' names: never rename one.
    @event_handler("customers", "customer_merged", requeue_on_error=True)
    def apply_customer_merged(self, body):
        self.inbox.apply(body, apply_merge, CustomerMergedData())

    @event_handler("customers", "customer_erased", requeue_on_error=True)
    def apply_customer_erased(self, body):
        self.inbox.apply(body, apply_erasure, CustomerErasedData())

    # --- helpers ---------------------------------------------------------------------------

    @property
    def _timeout(self):
        return self.config["CRM_RPC_TIMEOUT"]

    def _check_customer(self, customer_id):
        """Before any write begins: the customer exists (the survivor's id if merged)."""
        return check_customer(self.customers, customer_id, self._timeout)

    def _open_ticket(self, ticket, now):
        ticket.reopened_count = 0
        ticket.version = 1
        opened = domain.open_ticket(ticket, domain.sla_policy(self.config), now)
        self.db.add(ticket)
        self.db.add(
            TicketStep(
                ticket_id=ticket.id, step="open", to_status="open", actor=ticket.opened_by, at=now
            )
        )
        self.outbox.add(self.db, "ticket_opened", ticket.id, ticket.version, opened)
        return ticket

    def _emit(self, ticket, events):
        """Each event of a ticket takes the next position in its history."""
        for event_type, data in events:
            ticket.version += 1
            self.outbox.add(self.db, event_type, ticket.id, ticket.version, data)

    def _get(self, model, record_id, lock=False):
        """The record with that id (any spelling of the UUID), or None."""
        try:
            canonical = str(uuid.UUID(str(record_id)))
        except ValueError:
            return None
        return self.db.get(model, canonical, with_for_update=lock)

    def _ticket(self, ticket_id, lock=False):
        ticket = self._get(Ticket, ticket_id, lock)
        if ticket is None:
            raise TicketNotFound(f"No ticket {ticket_id}.", details={"id": str(ticket_id)})
        return ticket

    @staticmethod
    def _answered(ticket, satisfaction_id):
        return SatisfactionAlreadyRecorded(
            f"Ticket {ticket.id} has its satisfaction answer already.",
            details={"ticket_id": ticket.id, "satisfaction_id": satisfaction_id},
        )

    def _list(self, schema, query, find, output):
        """`{"items", "next_cursor"}`: a page of what `find` finds for the query."""
        params = load(schema, query)
        if params.get("customer_id"):
            params["customer_id"] = survivor_of(self.db, CustomerFate, params["customer_id"])
        rows, last = find(self.db, params, self._after(params["cursor"], cursors.decode_position))
        return {
            "items": output.dump(rows, many=True),
            "next_cursor": cursors.encode_position(*last) if last else None,
        }

    @staticmethod
    def _after(cursor, decode):
        """The position a cursor names: (at, id) of a list, (at, kind, id) of the timeline."""
        if not cursor:
            return None
        try:
            return decode(cursor)
        except ValueError:
            raise InvalidInput("Invalid cursor.", {"cursor": ["Invalid cursor."]}) from None


def apply_merge(session, envelope):
    record_merge(session, CustomerFate, envelope["data"], store.reparent)


def apply_erasure(session, envelope):
    record_erasure(session, CustomerFate, envelope["data"], store.scrub)
