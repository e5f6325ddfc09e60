import pytest

from gateway.service import GatewayService
from services.customers.service import CustomersService
from services.interactions.service import InteractionsService
from services.pipeline.service import PipelineService
from services.reports.service import ReportsService
from tests.support.http import Client

ALL_SERVICES = (CustomersService, PipelineService, InteractionsService, ReportsService)


@pytest.fixture
def client(crm_config, runner_factory):
    """A client of the gateway, with every service running behind it."""
    runner = runner_factory(crm_config, GatewayService, *ALL_SERVICES)
    runner.start()
    return Client(f"http://{crm_config['CRM_GATEWAY_ADDRESS']}")
