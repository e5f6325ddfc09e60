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
import redis  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from crm_common import migrations  # noqa: E402
from crm_common.config import SERVICES, db_url_key, from_env  # noqa: E402
from tests.support import settings  # noqa: E402
from tests.support.waiting import free_port  # noqa: E402


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
    environ = {
        "CRM_AMQP_URI": rabbit_config["AMQP_URI"],
        "CRM_REDIS_URL": settings.REDIS_URL,
        "CRM_REDIS_PREFIX": f"crm-test-{uuid.uuid4().hex[:12]}",
        "CRM_DATA_DIR": str(tmp_path),
        "CRM_ADMIN_TOKEN": settings.ADMIN_TOKEN,
        "CRM_GATEWAY_ADDRESS": f"127.0.0.1:{free_port()}",
        "CRM_OUTBOX_RELAY_GRACE": "0.5",
        # Tests see the broker path alone; catch-up tests ask for it explicitly.
        "CRM_REPORTS_CATCH_UP_SECONDS": "3600",
        "CRM_REPORTS_SEGMENT_SECONDS": "1",
        # No metrics server unless a test asks for one: tests run side by side on one host.
        "CRM_METRICS_PORT": "0",
    }
    for name in SERVICES:
        environ[db_url_key(name)] = make_db_url(db_kind, name)
    config = from_env(environ)
    for name in SERVICES:
        migrations.upgrade(name, config[db_url_key(name)])
    yield config
    client = redis.Redis.from_url(settings.REDIS_URL)
    keys = list(client.scan_iter(match=f"{config['CRM_REDIS_PREFIX']}:*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()
