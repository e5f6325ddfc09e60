"""Fault tests: parts of the system killed, cut off or restarted while it works.

Every part a test stops is its own: a `crm run` process, a TCP proxy in
front of the shared broker, or a private Redis server or PostgreSQL cluster. The
machine's shared servers are never stopped. Run these alone with
`pytest -m fault`.
"""

import pytest

from tests.integration.conftest import make_broker_proxy  # noqa: F401
from tests.support import private_postgres as postgres_cluster
from tests.support import private_redis as redis_server
from tests.support.processes import Processes, process_env


@pytest.fixture
def processes(crm_config, tmp_path):
    """`crm run` processes on crm_config's vhost and databases; all killed at teardown."""
    log_dir = tmp_path / "logs"
    log_dir.mkdir()
    running = Processes(process_env(crm_config), log_dir)
    try:
        yield running
    finally:
        running.close()


@pytest.fixture
def private_postgres():
    """A PostgreSQL cluster of the test's own (tests/support/private_postgres.py)."""
    if not postgres_cluster.available():
        pytest.skip("no PostgreSQL server binaries: set CRM_TEST_PG_BIN to their folder")
    server = postgres_cluster.PrivatePostgres()
    try:
        server.create()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def private_redis():
    """A Redis server of the test's own (tests/support/private_redis.py)."""
    if not redis_server.REDIS_SERVER:
        pytest.skip("no redis-server: set CRM_TEST_REDIS_SERVER to one")
    server = redis_server.PrivateRedis()
    try:
        server.start()
        yield server
    finally:
        server.destroy()
