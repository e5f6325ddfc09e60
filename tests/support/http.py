"""A client app's view of the gateway, for tests."""

import requests

from tests.support.settings import ADMIN_TOKEN

AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class Client:
    def __init__(self, base_url):
        self.base_url = base_url
        self.http = requests.Session()

    def request(self, method, path, auth=True, **kwargs):
        headers = {**(AUTH if auth else {}), **kwargs.pop("headers", {})}
        response = self.http.request(
            method, self.base_url + path, headers=headers, timeout=15, **kwargs
        )
        assert response.headers.get("X-Request-Id"), "every answer carries a request id"
        return response

    def post(self, path, body, **kwargs):
        return self.request("POST", path, json=body, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)


def assert_error(response, status, code):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    assert "Traceback" not in response.text
    return error
