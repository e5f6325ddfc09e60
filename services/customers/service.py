"""The customers service: profiles and their lifecycle."""

import uuid
from datetime import UTC, datetime

from marshmallow import ValidationError
from nameko.rpc import rpc
from sqlalchemy import and_, or_, select

from crm_common.db import Database, lock_for
from crm_common.envelope import utcnow
from crm_common.outbox import Outbox
from crm_common.service import EventProducer, ServiceBase
from services.customers import domain
from services.customers.events import CATALOG
from services.customers.exceptions import CustomerNotFound, DuplicateCustomer, InvalidCustomer
from services.customers.models import Customer, OutboxEvent
from services.customers.schemas import CustomerInput, CustomerOutput, CustomerQuery

EXPECTED = (CustomerNotFound, DuplicateCustomer, InvalidCustomer)

_output = CustomerOutput()


def load(schema, payload):
    try:
        return schema.load(payload if payload is not None else {})
    except ValidationError as exc:
        raise InvalidCustomer("Invalid customer data.", exc.normalized_messages()) from None


class CustomersService(ServiceBase, EventProducer):
    name = "customers"

    db = Database()
    outbox = Outbox(OutboxEvent, CATALOG)

    @rpc(expected_exceptions=EXPECTED)
    def create_customer(self, payload, allow_duplicate=False):
        data = load(CustomerInput(), payload)
        if data["email"]:
            # Two creates with one email must not both pass the check below.
            lock_for(self.db, f"customers:email:{data['email']}")
        if not allow_duplicate:
            existing = self._same_email(data["email"])
            if existing is not None:
                raise DuplicateCustomer(
                    "A customer with this email already exists.",
                    {"email": [f"Already used by customer {existing}."]},
                    {"existing_id": existing},
                )
        now = utcnow()
        customer = Customer(id=str(uuid.uuid4()), created_at=now, updated_at=now, **data)
        self.db.add(customer)
        self.db.flush()
        self.outbox.add(
            self.db,
            "customer_created",
            customer.id,
            customer.version,
            {"customer_id": customer.id, "created_at": now.isoformat(), **data},
        )
        self.db.commit()
        return _output.dump(customer)

    @rpc(expected_exceptions=EXPECTED)
    def get_customer(self, customer_id):
        customer = self.db.get(Customer, str(customer_id)) if customer_id else None
        if customer is None:
            raise CustomerNotFound(f"No customer {customer_id}.", details={"id": customer_id})
        return _output.dump(customer)

    @rpc(expected_exceptions=EXPECTED)
    def list_customers(self, query=None):
        """Oldest first, `limit` at a time; `next_cursor` resumes after the last one."""
        params = load(CustomerQuery(), query)
        statement = select(Customer).order_by(Customer.created_at, Customer.id)
        for name in ("status", "owner"):
            if name in params:
                statement = statement.where(getattr(Customer, name) == params[name])
        if params["cursor"]:
            statement = statement.where(self._after(params["cursor"]))
        rows = self.db.scalars(statement.limit(params["limit"] + 1)).all()
        page = rows[: params["limit"]]
        next_cursor = None
        if len(rows) > params["limit"]:
            next_cursor = domain.encode_cursor(page[-1].created_at, page[-1].id)
        return {"items": _output.dump(page, many=True), "next_cursor": next_cursor}

    def _same_email(self, email):
        if email is None:
            return None
        return self.db.scalar(select(Customer.id).where(Customer.email == email).limit(1))

    @staticmethod
    def _after(cursor):
        try:
            created_at, customer_id = domain.decode_cursor(cursor)
            last = datetime.fromisoformat(created_at)
            if last.tzinfo is None:
                raise ValueError("cursor time has no zone")
            last = last.astimezone(UTC)
        except (ValueError, OverflowError):
            raise InvalidCustomer("Invalid cursor.", {"cursor": ["Invalid cursor."]}) from None
        return or_(
            Customer.created_at > last,
            and_(Customer.created_at == last, Customer.id > customer_id),
        )
