"""A client app's view of the gateway, for tests."""

import requests

from tests.support.settings import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Client:
    def __init__(self, base_url, token=ADMIN_TOKEN):
        self.base_url = base_url
        self.token = token
        self.http = requests.Session()

    def as_role(self, role, subject=None):
        """A client holding a new token with `role`, issued by this (admin) client."""
        response = self.post("/api/v1/auth/tokens", {"role": role, "subject": subject or role})
        assert response.status_code == 201, response.text
        return Client(self.base_url, response.json()["token"])

    def request(self, method, path, auth=True, **kwargs):
        bearer = {"Authorization": f"Bearer {self.token}"} if auth else {}
        headers = {**bearer, **kwargs.pop("headers", {})}
        response = self.http.request(
            method, self.base_url + path, headers=headers, timeout=15, **kwargs
        )
        assert response.headers.get("X-Request-Id"), "every answer carries a request id"
        return response

    def post(self, path, body, **kwargs):
        return self.request("POST", path, json=body, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.request("PATCH", path, json=body, **kwargs)


def created(response):
    """The body of a 201 answer."""
    assert response.status_code == 201, response.text
    return response.json()


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.text
    return error
