from pathlib import Path

import pytest

from crm_common.config import ConfigError, from_env


def test_defaults_give_a_local_run_with_sqlite_under_the_data_dir(tmp_path):
    config = from_env({"CRM_DATA_DIR": str(tmp_path)})
    assert config["AMQP_URI"] == "amqp://guest:guest@127.0.0.1:5672/"
    assert config["WEB_SERVER_ADDRESS"] == "127.0.0.1:8000"
    assert config["CRM_REDIS_URL"] == "redis://127.0.0.1:6379/0"
    for service in ("customers", "pipeline", "interactions", "reports"):
        url = config[f"CRM_{service.upper()}_DB_URL"]
        assert url == f"sqlite:///{Path(tmp_path).resolve() / service}.db"
    assert config["CRM_RPC_TIMEOUT"] == 5.0
    assert config["CRM_MAX_BODY_BYTES"] == 1024 * 1024


def test_environment_overrides_defaults():
    config = from_env(
        {
            "CRM_AMQP_URI": "amqp://crm:pw@broker:5672/crm",
            "CRM_CUSTOMERS_DB_URL": "postgresql+psycopg2://crm@db/customers",
            "CRM_GATEWAY_ADDRESS": "0.0.0.0:9000",
            "CRM_RPC_TIMEOUT": "2.5",
        }
    )
    assert config["AMQP_URI"] == "amqp://crm:pw@broker:5672/crm"
    assert config["CRM_CUSTOMERS_DB_URL"] == "postgresql+psycopg2://crm@db/customers"
    assert config["WEB_SERVER_ADDRESS"] == "0.0.0.0:9000"
    assert config["CRM_RPC_TIMEOUT"] == 2.5


@pytest.mark.parametrize(
    ("key", "value"),
    [("CRM_RPC_TIMEOUT", "soon"), ("CRM_MAX_BODY_BYTES", "0"), ("CRM_MAX_WORKERS", "-1")],
)
def test_malformed_numbers_are_refused_naming_the_variable(key, value):
    with pytest.raises(ConfigError, match=key):
        from_env({key: value})


def test_the_gateway_process_gets_its_own_worker_pool():
    from crm_common.config import for_process

    config = from_env({"CRM_MAX_WORKERS": "10", "CRM_GATEWAY_MAX_WORKERS": "200"})
    assert for_process(config, "gateway")["max_workers"] == 200
    assert for_process(config, "customers")["max_workers"] == 10
    assert (
        for_process(config, "reports")["max_workers"] == 500
    )  # its own default: the prefetch its batches are made of


def test_the_gateway_keeps_answers_a_day_and_limits_600_requests_a_minute_by_default():
    config = from_env({})
    assert config["CRM_IDEMPOTENCY_TTL_SECONDS"] == 86400
    assert config["CRM_RATE_LIMIT_PER_MINUTE"] == 600


@pytest.mark.parametrize("key", ["CRM_RATE_LIMIT_PER_MINUTE", "CRM_REPORTS_CACHE_SECONDS"])
def test_zero_turns_a_limit_or_a_cache_off_but_below_zero_is_refused(key):
    assert from_env({key: "0"})[key] == 0
    with pytest.raises(ConfigError, match=f"{key} must be zero or more"):
        from_env({key: "-1"})


def test_answers_are_kept_for_some_time():
    with pytest.raises(ConfigError, match="CRM_IDEMPOTENCY_TTL_SECONDS"):
        from_env({"CRM_IDEMPOTENCY_TTL_SECONDS": "0"})


def test_crm_up_numbers_the_metrics_ports_of_its_processes_from_the_one_given():
    from crm_common.config import PROCESSES, metrics_port_of

    config = from_env({"CRM_METRICS_PORT": "9300"})
    assert [metrics_port_of(config, name) for name in PROCESSES] == [9300, 9301, 9302, 9303, 9304]
    assert PROCESSES[-1] == "gateway"
    off = from_env({"CRM_METRICS_PORT": "0"})
    assert {metrics_port_of(off, name) for name in PROCESSES} == {0}


@pytest.mark.parametrize("value", ["-1", "65532", "http"])
def test_a_metrics_port_without_room_for_every_process_is_refused(value):
    with pytest.raises(ConfigError, match="CRM_METRICS_PORT"):
        from_env({"CRM_METRICS_PORT": value})
