"""Fixtures shared by every test: green sockets, databases, broker vhosts, config."""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

# Nameko's pytest plugin no longer patches (NAMEKO-NOTES): do it before any socket exists.
eventlet.monkey_patch()

from psycogreen.eventlet import patch_psycopg  # noqa: E402

patch_psycopg()

import pytest  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from tests.support import settings  # noqa: E402
from tests.support.databases import PostgresDatabases, SqliteTemplates, database_url  # noqa: E402
from tests.support.system import forget_redis_keys, system_config  # noqa: E402


def pytest_configure(config):
    # The nameko plugin's rabbit_config fixture makes one vhost per test here.
    config.option.RABBIT_AMQP_URI = settings.AMQP_URI
    config.option.RABBIT_API_URI = settings.RABBIT_API_URI


@pytest.fixture(scope="session")
def pg_databases():
    """The test databases of this session on the tests' PostgreSQL server."""
    admin = create_engine(settings.PG_URL, isolation_level="AUTOCOMMIT")
    databases = PostgresDatabases(admin)
    yield databases
    databases.close()
    admin.dispose()


@pytest.fixture(scope="session")
def sqlite_templates(tmp_path_factory):
    return SqliteTemplates(tmp_path_factory.mktemp("schema-templates"))


@pytest.fixture
def make_db_url(tmp_path, pg_databases, sqlite_templates):
    """make(kind, name, schema=None): the URL of a new SQLite file or PostgreSQL database,
    empty or, given a service name as `schema`, at that service's newest schema."""
    created = []

    def make(kind, name, schema=None):
        if kind == "sqlite":
            path = tmp_path / f"{name}.db"
            return sqlite_templates.copy(schema, path) if schema else f"sqlite:///{path}"
        database = pg_databases.create(name, schema)
        created.append(database)
        return database_url(settings.PG_URL, database)

    yield make
    pg_databases.drop(created)


@pytest.fixture
def db_kind():
    """Which database the services use; tests that run on both parametrize this."""
    return "sqlite"


@pytest.fixture
def crm_config(rabbit_config, make_db_url, db_kind, tmp_path):
    """The config `crm run` would build, in a private vhost, every database migrated."""
    config = system_config(
        rabbit_config["AMQP_URI"], lambda name: make_db_url(db_kind, name, schema=name), tmp_path
    )
    yield config
    forget_redis_keys(config)
