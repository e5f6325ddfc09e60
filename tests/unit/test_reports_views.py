from datetime import UTC, datetime, timedelta

import pytest

from crm_common.envelope import load_envelope, make_envelope
from services.reports import rebuild, views
from services.reports.schemas import CustomerCreatedData
from services.reports.service import apply_customer
from tests.support.fakes import database_for

T0 = datetime(2026, 1, 31, 12, 0, tzinfo=UTC)


@pytest.fixture
def session(make_db_url):
    url = make_db_url("sqlite", "reports", schema="reports")
    with database_for(url).session() as session:
        yield session


def created(customer_id, status="lead", owner=None, at=T0):
    body = make_envelope(
        event_type="customer_created",
        producer="customers",
        aggregate_id=customer_id,
        sequence=1,
        occurred_at=at,
        data={
            "customer_id": customer_id,
            "status": status,
            "owner": owner,
            "created_at": at.isoformat(),
        },
    )
    return load_envelope(body, CustomerCreatedData())


def test_customers_are_counted_per_status_and_owner(session):
    for number, (status, owner) in enumerate(
        [("lead", "sam"), ("lead", "sam"), ("lead", None), ("customer", "kim")]
    ):
        apply_customer(session, created(f"c-{number}", status, owner))
    session.commit()
    assert views.customers_by_status_owner(session) == {
        "items": [
            {"status": "customer", "owner": "kim", "customers": 1},
            {"status": "lead", "owner": None, "customers": 1},
            {"status": "lead", "owner": "sam", "customers": 2},
        ],
        "total": 4,
    }


def test_a_second_creation_of_one_customer_changes_no_count(session):
    apply_customer(session, created("c-1", "lead", "sam"))
    apply_customer(session, created("c-1", "customer", "kim"))
    session.commit()
    assert views.customers_by_status_owner(session)["items"] == [
        {"status": "lead", "owner": "sam", "customers": 1}
    ]


def state_of(session):
    """The customers view's state as a report read sees it."""
    return rebuild.read_state(session, views.CUSTOMERS_VIEW)[0]


def test_freshness_follows_the_newest_event_and_never_moves_back(session):
    assert views.freshness(state_of(session), T0) == {
        "as_of": None,
        "lag_seconds": None,
    }
    apply_customer(session, created("c-2", at=T0 + timedelta(seconds=30)))
    apply_customer(session, created("c-1", at=T0))  # late arrival of an older event
    session.commit()
    now = T0 + timedelta(seconds=90)
    assert views.freshness(state_of(session), now) == {
        "as_of": (T0 + timedelta(seconds=30)).isoformat(timespec="microseconds"),
        "lag_seconds": 60.0,
    }
