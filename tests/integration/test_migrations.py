"""Each service's migrations build exactly its models' schema, and undo cleanly."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

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
