"""Tokens with roles: issued and revoked by an admin, stored hashed, checked per endpoint."""

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


def test_no_token_or_a_wrong_one_is_401(client):
    assert_error(client.get("/api/v1/deals", auth=False), 401, "UNAUTHORIZED")
    response = client.get("/api/v1/deals", headers={"Authorization": "Bearer crm_made_up"})
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# (method, path, body) of one endpoint per permission, and the roles it admits.
GROUPS = {
    "customers:read": (("GET", "/api/v1/customers", None), "*"),
    "customers:write": (
        ("POST", "/api/v1/customers", {}),
        {"admin", "manager", "sales", "service", "marketing"},
    ),
    "customers:export": (
        ("GET", "/api/v1/customers/export", None),
        {"admin", "manager", "marketing"},
    ),
    "customers:admin": (
        ("POST", "/api/v1/customers/5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a/merge", {}),
        {"admin", "manager"},
    ),
    "deals:read": (("GET", "/api/v1/deals", None), "*"),
    "deals:write": (("POST", "/api/v1/deals", {}), {"admin", "manager", "sales"}),
    "pipelines:write": (("POST", "/api/v1/pipelines", {}), {"admin", "manager"}),
    "interactions:read": (("GET", "/api/v1/interactions", None), "*"),
    "interactions:write": (
        ("POST", "/api/v1/feedback", {}),
        {"admin", "manager", "sales", "service", "marketing"},
    ),
    "tickets:read": (("GET", "/api/v1/tickets", None), "*"),
    "tickets:write": (
        ("POST", "/api/v1/tickets/5bd0c5c5-6f5c-4ef4-9d61-3a4a3d3a0a0a/assign", {}),
        {"admin", "manager", "service"},
    ),
    "reports:read": (("GET", "/api/v1/reports/customers", None), "*"),
    "tokens:admin": (("GET", "/api/v1/auth/tokens", None), {"admin"}),
}
ROLES = ("admin", "manager", "sales", "service", "marketing", "viewer")


def test_every_role_gets_exactly_its_endpoint_groups(client):
    clients = {role: client.as_role(role, f"{role}-user") for role in ROLES}
    for permission, ((method, path, body), allowed) in GROUPS.items():
        for role, caller in clients.items():
            response = caller.request(method, path, json=body)
            if allowed == "*" or role in allowed:
                # Admitted: whatever the answer, it is not about the role.
                assert response.status_code not in (401, 403), (permission, role, response.text)
            else:
                assert_error(response, 403, "FORBIDDEN")
