"""Fault tests: parts of the system killed, cut off or restarted while it works.

Every part a test stops is its own: a `crm run` process, a TCP proxy in
front of the shared broker or Redis, or a private PostgreSQL cluster. The
machine's shared servers are never stopped. Run these alone with
`pytest -m fault`.
"""

from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.support.processes import Processes, process_env
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import free_port


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


def proxied_amqp_uri(amqp_uri, proxy):
    """`amqp_uri` with its host and port replaced by the proxy's."""
    broker = urlsplit(amqp_uri)
    return urlunsplit(
        broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.args[0]}")
    )


@pytest.fixture
def make_broker_proxy(crm_config):
    """make(hold_exchange=None): a started proxy to the tests' broker, `.uri` through it."""
    made = []

    def make(hold_exchange=None):
        broker = urlsplit(crm_config["AMQP_URI"])
        proxy = TcpProxy(free_port(), broker.hostname, broker.port or 5672, hold_exchange)
        made.append(proxy)
        proxy.start()
        proxy.uri = proxied_amqp_uri(crm_config["AMQP_URI"], proxy)
        return proxy

    yield make
    for proxy in made:
        proxy.cut()
