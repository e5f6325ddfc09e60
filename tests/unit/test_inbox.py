import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from crm_common import migrations
from crm_common.envelope import load_envelope, make_envelope
from crm_common.inbox import apply_many, apply_once
from services.reports import views
from services.reports.models import AppliedEvent, CustomerFact, ViewState
from services.reports.schemas import CustomerCreatedData
from tests.support.fakes import bound_inbox, database_for


@pytest.fixture
def database(tmp_path):
    url = f"sqlite:///{tmp_path}/reports.db"
    migrations.upgrade("reports", url)
    return database_for(url)


@pytest.fixture
def inbox(database):
    # A service name of its own, so the counters this test moves are its alone.
    return bound_inbox(AppliedEvent, database, service_name=f"test-{uuid.uuid4().hex[:12]}")


def counted(inbox, metric, event_type, label, value):
    sample = REGISTRY.get_sample_value(
        f"crm_events_{metric}_total",
        {"service": inbox.service, "event_type": event_type, label: value},
    )
    return sample or 0


def customer_created(customer_id="c-1", status="lead", owner="sam"):
    return make_envelope(
        event_type="customer_created",
        producer="customers",
        aggregate_id=customer_id,
        sequence=1,
        data={
            "customer_id": customer_id,
            "status": status,
            "owner": owner,
            "created_at": "2026-01-31T12:00:00+00:00",
            "name": "Ada",
        },
    )


def count(database, model):
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_an_event_delivered_twice_is_applied_once(inbox, database):
    body = customer_created()
    assert inbox.apply(body, views.apply_customer_created, CustomerCreatedData()) is True
    assert inbox.apply(body, views.apply_customer_created, CustomerCreatedData()) is False
    assert count(database, CustomerFact) == 1
    assert count(database, AppliedEvent) == 1
    with database.session() as session:
        assert session.get(ViewState, views.CUSTOMERS_VIEW).events_applied == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "applied") == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "repeated") == 1


def test_an_effect_that_fails_leaves_no_trace_so_a_retry_applies_it(database):
    envelope = load_envelope(customer_created(), CustomerCreatedData())

    def failing(session, envelope):
        views.apply_customer_created(session, envelope)
        raise RuntimeError("database went away mid-way")

    with database.session() as session, pytest.raises(RuntimeError):
        apply_once(session, AppliedEvent, envelope, failing)
    assert count(database, AppliedEvent) == 0
    assert count(database, CustomerFact) == 0

    with database.session() as session:
        assert apply_once(session, AppliedEvent, envelope, views.apply_customer_created) is True
    assert count(database, CustomerFact) == 1


def test_an_invalid_event_is_dropped_without_effect(inbox, database):
    body = customer_created()
    del body["data"]["status"]
    assert inbox.apply(body, views.apply_customer_created, CustomerCreatedData()) is False
    assert inbox.apply({"hello": "world"}, views.apply_customer_created) is False
    assert count(database, CustomerFact) == 0
    assert count(database, AppliedEvent) == 0
    assert counted(inbox, "failed", "customer_created", "reason", "invalid") == 1
    assert counted(inbox, "failed", "unknown", "reason", "invalid") == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "applied") == 0


@pytest.mark.parametrize(
    "failure",
    [
        OperationalError("UPDATE view_state", {}, Exception("connection refused")),
        # Someone else changed a versioned row between the effect's read and its write.
        StaleDataError("UPDATE statement on table 'deals' expected to update 1 row(s)"),
    ],
)
def test_a_failure_that_may_pass_is_raised_for_the_event_to_be_redelivered(
    inbox, database, monkeypatch, failure
):
    monkeypatch.setattr("crm_common.inbox.RETRY_PAUSE_SECONDS", 0)

    def fails(session, envelope):
        views.apply_customer_created(session, envelope)
        raise failure

    with pytest.raises(type(failure)):
        inbox.apply(customer_created(), fails, CustomerCreatedData())
    assert count(database, AppliedEvent) == 0
    assert count(database, CustomerFact) == 0
    assert counted(inbox, "failed", "customer_created", "reason", "retry") == 1


def test_an_event_the_database_refuses_is_dropped_not_looped(inbox, database):
    def refused(session, envelope):
        raise DataError("INSERT INTO customer_facts", {}, Exception("value too long"))

    assert inbox.apply(customer_created(), refused, CustomerCreatedData()) is False
    assert count(database, AppliedEvent) == 0
    assert counted(inbox, "failed", "customer_created", "reason", "unappliable") == 1


def test_a_batch_applies_each_new_event_once_and_skips_those_applied_before(inbox, database):
    first, second = customer_created("c-1"), customer_created("c-2")
    assert inbox.apply(first, views.apply_customer_created, CustomerCreatedData())
    batch = [load_envelope(body, CustomerCreatedData()) for body in (first, second, second)]
    with database.session() as session:
        applied = apply_many(session, AppliedEvent, batch, lambda _: views.apply_customer_created)
        session.commit()
    assert len(applied) == 1
    assert count(database, AppliedEvent) == 2
    assert count(database, CustomerFact) == 2
    with database.session() as session:
        assert session.get(ViewState, views.CUSTOMERS_VIEW).events_applied == 2
