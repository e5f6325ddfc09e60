"""The whole system started as `make run` starts it, driven over HTTP like a client app."""

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

from crm_common.config import PROCESSES
from tests.e2e.conftest import start_up
from tests.support.waiting import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_a_client_creates_a_customer_that_shows_up_in_the_report(system):
    base_url, data_dir, log_path, _ = system
    token_file = data_dir / "admin-token"
    assert f"admin token taken from {token_file}" in log_path.read_text()
    http = requests.Session()
    http.headers["Authorization"] = f"Bearer {token_file.read_text().strip()}"

    assert http.get(f"{base_url}/ready", timeout=10).json()["status"] == "ready"
    for database in ("customers", "pipeline", "interactions", "reports"):
        assert (data_dir / f"{database}.db").exists()

    created = http.post(
        f"{base_url}/api/v1/customers",
        json={"name": "Ada Lovelace", "email": "ada@example.com", "owner": "sam"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    customer = created.json()
    assert http.get(f"{base_url}/api/v1/customers/{customer['id']}", timeout=10).json() == customer

    report = wait_for(
        lambda: (
            (body := http.get(f"{base_url}/api/v1/reports/customers", timeout=10).json())["total"]
            and body
        ),
        message="the customer in the report",
    )
    assert report["items"] == [{"status": "lead", "owner": "sam", "customers": 1}]
    assert report["lag_seconds"] >= 0

    refused = http.post(
        f"{base_url}/api/v1/customers",
        data="{",
        timeout=10,
        headers={"Content-Type": "application/json"},
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "VALIDATION_ERROR"
    assert requests.get(f"{base_url}/api/v1/customers", timeout=10).status_code == 401


def test_each_process_serves_its_own_metrics_on_its_own_port(system):
    base_url, _, log_path, metrics_port = system
    assert requests.get(f"{base_url}/ready", timeout=10).status_code == 200
    assert f"customers {metrics_port}, pipeline {metrics_port + 1}" in log_path.read_text()
    for offset, name in enumerate(PROCESSES):
        scraped = requests.get(f"http://127.0.0.1:{metrics_port + offset}/metrics", timeout=10)
        assert scraped.status_code == 200, name
        # Each process answers for itself: its own service's series, no other's.
        services = set(re.findall(r'service="([a-z]+)"', scraped.text))
        assert services == {name}, (name, services)
    gateway = requests.get(f"http://127.0.0.1:{metrics_port + 4}/metrics", timeout=10).text
    assert (
        'crm_http_requests_total{method="GET",route="/ready",service="gateway",status="200"}'
        in (gateway)
    )
    customers = requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    assert 'crm_outbox_backlog{service="customers"}' in customers


def test_up_says_clearly_when_the_broker_cannot_be_reached(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("CRM_")}
    env.update(
        CRM_AMQP_URI=f"amqp://guest:secret@127.0.0.1:{free_port()}/", CRM_DATA_DIR=str(tmp_path)
    )
    result = subprocess.run(
        [sys.executable, "-m", "crm_common.cli", "up"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "cannot reach RabbitMQ at amqp://guest:***@127.0.0.1" in result.stderr
    assert "CRM_AMQP_URI" in result.stderr
    assert "secret" not in result.stderr


def processes_with(variable):
    """Ids of the processes whose environment holds `variable` (NAME=value)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if variable.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_up_stopped_while_starting_stops_every_process_it_started(rabbit_config, tmp_path):
    """A supervisor's SIGTERM at any moment stops the system; one that waited for it to be
    ready first would soon kill `crm up` alone and leave its five processes running."""
    data_dir = f"CRM_DATA_DIR={tmp_path / 'data'}"
    log_path = tmp_path / "crm-up.log"
    up = start_up(
        log_path,
        CRM_AMQP_URI=rabbit_config["AMQP_URI"],
        CRM_DATA_DIR=str(tmp_path / "data"),
        CRM_GATEWAY_ADDRESS=f"127.0.0.1:{free_port()}",
        CRM_METRICS_PORT="0",
    )
    try:
        wait_for(lambda: len(processes_with(data_dir)) == 1 + len(PROCESSES), message="them all")
        up.send_signal(signal.SIGTERM)
        assert up.wait(timeout=30) == 0, log_path.read_text()[-3000:]
    finally:
        up.kill()
        left = processes_with(data_dir)
        for pid in left:  # this test's own, orphaned
            os.kill(pid, signal.SIGKILL)
    assert "crm: up." not in log_path.read_text()
    assert left == []
