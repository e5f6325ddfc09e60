"""Fixtures shared by every test: green sockets, databases, broker vhosts, config."""

import warnings

warnings.filterwarnings("ignore", message=r"\s*Eventlet is deprecated")

import eventlet  # noqa: E402

# Nameko's pytest plugin no longer patches (NAMEKO-NOTES): do it before any socket exists.
eventlet.monkey_patch()

from psycogreen.eventlet import patch_psycopg  # noqa: E402

patch_psycopg()

import uuid  # noqa: E402

import pytest  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from tests.support import settings  # noqa: E402
from tests.support.system import forget_redis_keys, system_config  # noqa: E402


def pytest_configure(config):
    # The nameko plugin's rabbit_config fixture makes one vhost per test here.
    config.option.RABBIT_AMQP_URI = settings.AMQP_URI
    config.option.RABBIT_API_URI = settings.RABBIT_API_URI


@pytest.fixture(scope="session")
def pg_admin():
    engine = create_engine(settings.PG_URL, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()


@pytest.fixture
def make_db_url(tmp_path, pg_admin):
    """make(kind, name): the URL of a new, empty SQLite file or PostgreSQL database."""
    created = []

    def make(kind, name):
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        database = f"crm_test_{name}_{uuid.uuid4().hex[:12]}"
        with pg_admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{database}"'))
        created.append(database)
        return (
            make_url(settings.PG_URL).set(database=database).render_as_string(hide_password=False)
        )

    yield make
    with pg_admin.connect() as connection:
        for database in created:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))


@pytest.fixture
def db_kind():
    """Which database the services use; tests that run on both parametrize this."""
    return "sqlite"


@pytest.fixture
def crm_config(rabbit_config, make_db_url, db_kind, tmp_path):
    """The config `crm run` would build, in a private vhost, every database migrated."""
    config = system_config(
        rabbit_config["AMQP_URI"], lambda name: make_db_url(db_kind, name), tmp_path
    )
    yield config
    forget_redis_keys(config)
