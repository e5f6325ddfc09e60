"""Each service's migrations build exactly its models' schema, and undo cleanly; instances
starting at once migrate one at a time."""

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, select, text
from sqlalchemy.orm import Session

from crm_common import migrations
from crm_common.config import SERVICES
from services.customers.models import Base as CustomersBase
from services.customers.models import Customer
from services.interactions.models import Base as InteractionsBase
from services.pipeline.models import Base as PipelineBase
from services.reports.models import Base as ReportsBase

METADATA = {
    "customers": CustomersBase.metadata,
    "pipeline": PipelineBase.metadata,
    "interactions": InteractionsBase.metadata,
    "reports": ReportsBase.metadata,
}


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("service", SERVICES)
def test_upgrade_matches_the_models_and_downgrade_removes_everything(make_db_url, kind, service):
    url = make_db_url(kind, service)
    migrations.upgrade(service, url)
    migrations.upgrade(service, url)  # a second start finds nothing to do
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, METADATA[service]) == []
        migrations.downgrade(service, url, "base")
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()


# One starting instance: imports first, then waits at the gate so that all of them
# begin their migration at the same moment, as containers started together would.
STARTING_INSTANCE = """
import sys, time
from pathlib import Path
from crm_common import migrations
gate = Path(sys.argv[3])
while not gate.exists():
    time.sleep(0.005)
migrations.upgrade(sys.argv[1], sys.argv[2])
"""
INSTANCES = 4
ROOT = Path(__file__).resolve().parents[2]


def assert_at_head_with_the_models_schema(service, url):
    head = ScriptDirectory.from_config(migrations.alembic_config(service)).get_current_head()
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT version_num FROM alembic_version")).all() == [
                (head,)
            ]
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, METADATA[service]) == []
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["postgres", "sqlite"])
def test_instances_starting_at_once_on_a_fresh_database_all_start(make_db_url, tmp_path, kind):
    """`docker compose up --scale reports=4` on an empty database: one instance migrates,
    the others wait for it and find nothing left to do; none fails."""
    service = "reports"  # the longest history
    url = make_db_url(kind, service)
    gate = tmp_path / "go"
    instances = [
        subprocess.Popen(
            [sys.executable, "-c", STARTING_INSTANCE, service, url, str(gate)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(INSTANCES)
    ]
    gate.touch()
    for instance in instances:
        output, _ = instance.communicate(timeout=180)
        assert instance.returncode == 0, output
    assert_at_head_with_the_models_schema(service, url)


def test_times_an_earlier_sqlite_bulk_insert_wrote_as_zone_text_are_made_comparable(
    make_db_url,
):
    """Imports before the fix stored the driver's text for aware times; the list's cursor
    (created_at, id) never matched them, so they came back on every next page."""
    url = make_db_url("sqlite", "customers")
    migrations.upgrade("customers", url, "0003")
    moments = [
        datetime(2026, 1, 31, 12, 0, tzinfo=UTC),
        datetime(2026, 1, 31, 12, 0, 0, 120, tzinfo=UTC),
    ]
    columns = "id, name, status, tags, attributes, segment_sequence, created_at, updated_at"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            # As the driver writes an aware datetime: "2026-01-31 12:00:00+00:00".
            connection.exec_driver_sql(
                f"INSERT INTO customers ({columns}, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 1)",
                [(f"c-{n}", "Ada", "lead", "[]", "{}", 0, at, at) for n, at in enumerate(moments)],
            )
        migrations.upgrade("customers", url)
        with Session(engine) as session:
            for number, moment in enumerate(moments):
                found = session.scalars(
                    select(Customer.id).where(
                        Customer.created_at == moment, Customer.updated_at == moment
                    )
                ).all()
                assert found == [f"c-{number}"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_events_logged_before_log_positions_keep_their_ids_as_positions(make_db_url, kind):
    """A cursor events_since gave out was an outbox id: it must name the same place after."""
    url = make_db_url(kind, "customers")
    migrations.upgrade("customers", url, "0004")
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for number in (3, 5, 9):
                connection.execute(
                    text(
                        "INSERT INTO outbox (id, event_id, event_type, aggregate_id, sequence,"
                        " occurred_at, body) VALUES (:id, :event_id, 'customer_created', :id, 1,"
                        " :at, '{}')"
                    ),
                    {"id": number, "event_id": f"e-{number}", "at": datetime.now(UTC)},
                )
        migrations.upgrade("customers", url)
        with engine.connect() as connection:
            found = connection.execute(text("SELECT id, log_position FROM outbox ORDER BY id"))
            assert [tuple(row) for row in found] == [(3, 3), (5, 5), (9, 9)]
    finally:
        engine.dispose()
