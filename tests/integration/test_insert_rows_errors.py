"""Rows inserted past SQLAlchemy (one JSON parameter, or psycopg2's execute_values) fail as
SQLAlchemy's errors, which the inbox, the dead letters and a rebuild page retry: a rebuild
page whose events a live consumer applied meanwhile is applied again instead of stopping
the rebuild."""

import pytest
from sqlalchemy.exc import IntegrityError

from crm_common import migrations
from crm_common.db import insert_rows, plain_insert
from crm_common.envelope import utcnow
from services.reports.models import AppliedEvent
from tests.support.fakes import database_for


def test_a_duplicate_key_inserted_in_bulk_on_postgresql_is_an_integrity_error(make_db_url):
    url = make_db_url("postgres", "reports")
    migrations.upgrade("reports", url)
    database = database_for(url)
    row = {
        "event_id": "0c6f1bd4-5d0e-4b8e-9a53-0d0f5d0e9a01",
        "event_type": "customer_created",
        "producer": "customers",
        "aggregate_id": "c-1",
        "sequence": 1,
        "applied_at": utcnow(),
    }
    with database.session() as session:
        insert_rows(session, plain_insert(AppliedEvent), [row])
        session.commit()
    with database.session() as session, pytest.raises(IntegrityError, match="pk_applied_events"):
        insert_rows(session, plain_insert(AppliedEvent), [row])
    database.engine.dispose()
