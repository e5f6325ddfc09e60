"""Tokens with roles: issued and revoked by an admin, stored hashed.

What each role may call is checked endpoint by endpoint in test_gateway_roles.
"""

import pytest
import redis

from tests.support import settings
from tests.support.http import Client, assert_error


def test_an_admin_issues_lists_and_revokes_tokens(client, crm_config):
    issued = client.post("/api/v1/auth/tokens", {"role": "service", "subject": "sue"})
    assert issued.status_code == 201, issued.text
    token = issued.json()
    assert token["token"].startswith("crm_") and token["role"] == "service"
    sue = Client(client.base_url, token["token"])
    assert sue.get("/api/v1/auth/me").json()["subject"] == "sue"

    listed = client.get("/api/v1/auth/tokens").json()["items"]
    assert [(t["id"], t["subject"]) for t in listed] == [(token["id"], "sue")]
    assert "token" not in listed[0]
    # Stored hashed: the secret appears nowhere in Redis.
    store = redis.Redis.from_url(settings.REDIS_URL)
    for key in store.scan_iter(match=f"{crm_config['CRM_REDIS_PREFIX']}:*"):
        assert token["token"].encode() not in key
        if store.type(key) == b"string":
            assert token["token"].encode() not in store.get(key)

    assert client.request("DELETE", f"/api/v1/auth/tokens/{token['id']}").status_code == 204
    assert_error(sue.get("/api/v1/auth/me"), 401, "UNAUTHORIZED")
    assert_error(client.request("DELETE", f"/api/v1/auth/tokens/{token['id']}"), 404, "NOT_FOUND")
    assert client.get("/api/v1/auth/tokens").json()["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"role": "root", "subject": "x"},
        {"role": "sales"},
        {"role": "sales", "subject": ""},
        {"role": "sales", "subject": "x", "expires_in_days": 0},
    ],
)
def test_a_bad_token_request_is_400(client, body):
    assert_error(client.post("/api/v1/auth/tokens", body), 400, "VALIDATION_ERROR")
