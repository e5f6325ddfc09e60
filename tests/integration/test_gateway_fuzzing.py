"""Schemathesis over every operation of /openapi.json, against the running gateway.

Its coverage phase (boundary and invalid values of every parameter and body),
fuzzing phase (generated requests, valid and not) and stateful phase (chains
such as create, then read, change, delete) run with an admin token; every
answer must be no 5xx and conform to the document: status, content type,
headers and body.
"""

import subprocess
import sys

import pytest

from tests.support.settings import ADMIN_TOKEN

# Per operation and phase: the whole run takes about 20 s here.
EXAMPLES = 10
CONFIG = """
[generation]
# Text the services could never store is refused up front; generate text they can.
allow-x00 = false
codec = "utf-8"

[checks.positive_data_acceptance]
# The services' own rules (a record referred to must exist, a likely duplicate is a
# 409, a phone number has 7 to 15 digits) refuse some requests the schemas allow.
enabled = false

[checks.use_after_free]
# DELETE of a customer is a GDPR erasure: an anonymous record stays, for the reports.
enabled = false

[checks.negative_data_rejection]
# Invalid input may also be refused as too long a URL.
expected-statuses = [400, 401, 403, 404, 405, 409, 414, 415, 422]
"""


@pytest.fixture
def crm_config(crm_config):
    """Unlimited: a run sends thousands of requests a minute with one token."""
    return {**crm_config, "CRM_RATE_LIMIT_PER_MINUTE": 0}


def test_every_operation_answers_as_documented(client, tmp_path):
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    run = subprocess.run(
        [
            *(sys.executable, "-m", "schemathesis.cli", "--config-file", str(config)),
            *("run", f"{client.base_url}/openapi.json"),
            *("--header", f"Authorization: Bearer {ADMIN_TOKEN}"),
            *("--phases", "coverage,fuzzing,stateful", "--max-examples", str(EXAMPLES)),
            *("--seed", "1", "--generation-database", ":memory:", "--workers", "1"),
            "--no-color",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode != 0:
        pytest.fail(f"schemathesis found failures:\n{run.stdout}\n{run.stderr}", pytrace=False)
