from urllib.parse import quote, urlsplit, urlunsplit

import pytest
from nameko.runners import ServiceRunner

from gateway.service import GatewayService
from services.customers.service import CustomersService
from services.interactions.service import InteractionsService
from services.pipeline.service import PipelineService
from services.reports.service import ReportsService
from tests.support.http import Client
from tests.support.settings import AMQP_URI, REDIS_URL
from tests.support.system import forget_redis_keys, system_config
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import free_port

ALL_SERVICES = (CustomersService, PipelineService, InteractionsService, ReportsService)


@pytest.fixture
def client(crm_config, runner_factory):
    """A client of the gateway, with every service running behind it."""
    runner = runner_factory(crm_config, GatewayService, *ALL_SERVICES)
    runner.start()
    return Client(f"http://{crm_config['CRM_GATEWAY_ADDRESS']}")


@pytest.fixture(scope="module")
def module_settings():
    """Settings of the module's system (`module_client`) beside the tests' defaults."""
    return {}


@pytest.fixture(scope="module")
def module_client(vhost_pipeline, tmp_path_factory, module_settings, sqlite_templates):
    """As `client`, but one system (SQLite) for every test of the module: for modules of
    many short tests that each make records of their own."""
    folder = tmp_path_factory.mktemp("system")
    with vhost_pipeline.get() as vhost:
        amqp_uri = urlunsplit(urlsplit(AMQP_URI)._replace(path="/" + quote(vhost, safe="")))
        config = system_config(
            amqp_uri,
            lambda name: sqlite_templates.copy(name, folder / f"{name}.db"),
            folder,
            **module_settings,
        )
        runner = ServiceRunner(config)
        for service_cls in (GatewayService, *ALL_SERVICES):
            runner.add_service(service_cls)
        runner.start()
        try:
            client = Client(f"http://{config['CRM_GATEWAY_ADDRESS']}")
            client.config = config  # for tests that reach past the gateway (the broker)
            yield client
        finally:
            # Before the vhost goes, so that nothing tries to reconnect to it.
            runner.kill()
            forget_redis_keys(config)


@pytest.fixture
def redis_proxy():
    """The tests' Redis behind a proxy (`.url`): `cut()` takes it away from whoever uses that."""
    target = urlsplit(REDIS_URL)
    proxy = TcpProxy(free_port(), target.hostname, target.port or 6379)
    proxy.start()
    proxy.url = f"redis://127.0.0.1:{proxy.args[0]}{target.path or '/0'}"
    yield proxy
    proxy.cut()


@pytest.fixture
def make_broker_proxy(crm_config):
    """make(hold_exchange=None): a started proxy to the tests' broker, `.uri` through it;
    `cut()` takes the broker away from whoever uses that (see tests/support/tcp_proxy.py)."""
    made = []

    def make(hold_exchange=None):
        broker = urlsplit(crm_config["AMQP_URI"])
        proxy = TcpProxy(free_port(), broker.hostname, broker.port or 5672, hold_exchange)
        made.append(proxy)
        proxy.start()
        proxy.uri = urlunsplit(
            broker._replace(netloc=f"{broker.username}:{broker.password}@127.0.0.1:{proxy.args[0]}")
        )
        return proxy

    yield make
    for proxy in made:
        proxy.cut()
