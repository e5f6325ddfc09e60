"""Each service's migrations build exactly its models' schema, and undo cleanly; instances
starting at once migrate one at a time."""

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from crm_common import migrations
from crm_common.config import SERVICES
from services.customers.models import Base as CustomersBase
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
