"""A customer change that meets a version it did not read is a 409, not a 500."""

import pytest
from nameko.testing.services import worker_factory
from sqlalchemy import update

from crm_common.outbox import OutboxWriter
from services.customers import domain
from services.customers.events import CATALOG
from services.customers.exceptions import ConcurrentUpdate
from services.customers.models import Customer, OutboxEvent
from services.customers.service import CustomersService
from tests.support.fakes import bound_outbox, database_for


@pytest.mark.parametrize("db_kind", ["postgres"])
def test_a_change_that_meets_a_version_it_did_not_read_is_a_conflict(
    make_db_url, monkeypatch, db_kind
):
    url = make_db_url(db_kind, "customers", schema="customers")
    database = database_for(url)
    outbox = bound_outbox(OutboxEvent, CATALOG, database, service_name="customers")

    def worker(session):
        return worker_factory(CustomersService, db=session, outbox=OutboxWriter(outbox, []))

    with database.session() as session:
        ada = worker(session).create_customer({"name": "Ada Lovelace"})

    def bump_then_diff(before, patch):
        """Another writer commits between this change's read and its write."""
        with database.session() as other:
            other.execute(
                update(Customer)
                .where(Customer.id == ada["id"])
                .values(version=Customer.version + 1)
            )
            other.commit()
        monkeypatch.setattr(domain, "changes", original)
        return original(before, patch)

    original = domain.changes
    monkeypatch.setattr(domain, "changes", bump_then_diff)
    with database.session() as session, pytest.raises(ConcurrentUpdate) as caught:
        worker(session).update_customer(ada["id"], {"name": "Augusta Ada King"})
    assert caught.value.details == {"id": ada["id"]}
    database.engine.dispose()
