"""/openapi.json and /docs from the running gateway, and real answers held against the document.

A client generated from the document must be able to read what the gateway
really answers: each answer below is validated with openapi-core (status,
headers, content type, body), and every field in it must be one the document
names.
"""

import json
import re
from html.parser import HTMLParser

import requests
from openapi_core import Config, OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse
from openapi_spec_validator import validate

from gateway import openapi
from gateway.service import GatewayService
from tests.support.http import assert_error, created
from tests.support.waiting import wait_for


def test_the_document_needs_no_token_and_is_the_gateways(client):
    response = client.get("/openapi.json", auth=False)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    document = response.json()
    validate(document)
    assert document == json.loads(json.dumps(openapi.document(GatewayService)))
    assert "/api/v1/customers/{customer_id}" in document["paths"]


def test_the_docs_page_needs_no_token_and_nothing_from_elsewhere(client):
    page = client.get("/docs", auth=False)
    assert page.status_code == 200, page.text
    assert page.headers["Content-Type"].startswith("text/html")
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy
    assets = Assets()
    assets.feed(page.text)
    assert len(assets.urls) >= 5
    for url in assets.urls:
        assert url.startswith("/docs/"), url
        asset = client.get(url, auth=False)
        assert asset.status_code == 200, url
        assert asset.headers["Content-Type"].split(";")[0] in (
            "text/css",
            "text/javascript",
            "image/png",
        )
        assert asset.content
    starter = client.get("/docs/start.js", auth=False).text
    assert '"/openapi.json"' in starter and "validatorUrl: null" in starter
    assert not re.search(r"https?://", page.text + starter)


def test_a_file_not_of_the_page_is_a_404(client):
    for name in ("swagger-ui/swagger-ui.js.map", "swagger-ui/index.html", "..%2Fpyproject.toml"):
        assert_error(client.get(f"/docs/{name}", auth=False), 404, "NOT_FOUND")


def test_a_word_where_an_id_goes_is_no_id(client):
    response = client.patch("/api/v1/customers/export", {"name": "Ada"})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["Allow"] == "GET, HEAD"


def test_too_long_a_url_is_a_414_in_the_error_shape(client):
    # Answered before the request is read, so without a request id.
    response = requests.get(f"{client.base_url}/api/v1/customers?q={'x' * 9000}", timeout=15)
    assert response.status_code == 414
    assert response.json()["error"]["code"] == "URI_TOO_LONG"


def test_real_answers_are_what_the_document_says(client):
    answers = Answers(client)
    once = {"Idempotency-Key": "openapi-answers-1"}
    ada = created(
        answers.post("/api/v1/customers", {"name": "Ada Lovelace", "tags": ["vip"]}, headers=once)
    )
    replayed = answers.post(
        "/api/v1/customers", {"name": "Ada Lovelace", "tags": ["vip"]}, headers=once
    )
    assert replayed.headers["Idempotent-Replayed"] == "true"
    twin = created(answers.post("/api/v1/customers?allow_duplicate=true", {"name": "Ada Lovelace"}))
    answers.post("/api/v1/customers", {"name": "Ada Lovelace", "email": "a@example.com"})
    answers.get("/api/v1/customers?limit=1")
    answers.patch(f"/api/v1/customers/{ada['id']}", {"company": "Analytical Engines"})
    answers.get("/api/v1/customers/duplicates")
    answers.request(
        "POST",
        "/api/v1/customers/import",
        data="name,email,colour\nGrace,grace@example.com,blue\n,bad\n",
        headers={"Content-Type": "text/csv"},
    )
    answers.get("/api/v1/customers/export")

    pipelines = answers.get("/api/v1/pipelines").json()["items"]
    other = created(
        answers.post(
            "/api/v1/pipelines",
            {"name": "Renewals", "stages": [{"name": "due", "probability": 0.5}]},
        )
    )
    answers.patch(f"/api/v1/pipelines/{other['id']}", {"name": "Renewals 2027"})
    deal = created(
        answers.post(
            "/api/v1/deals",
            {"customer_id": ada["id"], "title": "Engine", "amount": "1200.50", "currency": "EUR"},
        )
    )
    answers.post(f"/api/v1/deals/{deal['id']}/stage", {"stage": pipelines[0]["stages"][1]["name"]})
    answers.post(f"/api/v1/deals/{deal['id']}/won", {})
    answers.post(f"/api/v1/deals/{deal['id']}/stage", {"stage": "lead"})  # 422: closed
    answers.get(f"/api/v1/deals/{deal['id']}/history")
    answers.get(f"/api/v1/deals?customer_id={ada['id']}")

    answers.post(
        "/api/v1/interactions",
        {
            "customer_id": ada["id"],
            "channel": "call",
            "direction": "inbound",
            "deal_id": deal["id"],
        },
    )
    answers.get("/api/v1/interactions")
    complaint = created(
        answers.post(
            "/api/v1/feedback", {"customer_id": ada["id"], "kind": "complaint", "text": "Slow"}
        )
    )
    ticket = complaint["ticket"]["id"]
    answers.post(f"/api/v1/tickets/{ticket}/assign", {"assignee": "kim"})
    answers.post(f"/api/v1/tickets/{ticket}/respond", {"note": "On it"})
    answers.post(f"/api/v1/tickets/{ticket}/resolve", {})
    answers.post(f"/api/v1/tickets/{ticket}/satisfaction", {"score": 4})
    answers.post(f"/api/v1/tickets/{ticket}/satisfaction", {"score": 5})  # 409: once
    answers.get(f"/api/v1/tickets/{ticket}")
    answers.get("/api/v1/tickets?status=resolved")
    answers.get(f"/api/v1/customers/{ada['id']}/timeline")

    def reports_caught_up():
        sales = client.get("/api/v1/reports/sales").json()
        satisfaction = client.get("/api/v1/reports/satisfaction").json()
        return sales["performance"] and satisfaction["responses"]

    wait_for(reports_caught_up, message="the won deal and the answer in the reports")
    for name in ("customers", "sales", "funnel", "segments", "service"):
        answers.get(f"/api/v1/reports/{name}")
        answers.get(f"/api/v1/reports/{name}.csv")
    answers.get("/api/v1/reports/satisfaction?group_by=agent")
    answers.get("/api/v1/reports/funnel?as_of=2020-01-01T00:00:00Z")
    answers.get("/api/v1/reports/segments/potential/customers")
    answers.get("/api/v1/admin/reports/rebuild")  # 404: none yet
    answers.post("/api/v1/admin/reports/rebuild", {})
    answers.get("/api/v1/admin/reports/rebuild")

    token = created(answers.post("/api/v1/auth/tokens", {"role": "viewer", "subject": "vi"}))
    answers.get("/api/v1/auth/tokens")
    answers.get("/api/v1/auth/me")
    answers.request("DELETE", f"/api/v1/auth/tokens/{token['id']}")
    answers.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token['token']}"})  # 401

    answers.post(f"/api/v1/customers/{ada['id']}/merge", {"merge_ids": [twin["id"]]})
    answers.get(f"/api/v1/customers/{twin['id']}")  # the survivor, resolved_from
    answers.get(f"/api/v1/customers/{ada['id']}/data")
    answers.request("DELETE", f"/api/v1/customers/{ada['id']}")
    answers.request("DELETE", f"/api/v1/customers/{ada['id']}")  # 422: erased already
    answers.post("/api/v1/deals", {"title": "No customer"})  # 400
    answers.get("/health", auth=False)
    answers.get("/ready", auth=False)

    assert {200, 201, 202, 204, 400, 401, 404, 409, 422} <= answers.statuses
    assert not answers.problems, "\n".join(answers.problems)


# Headers of the API's own making (not HTTP's plumbing): where one is sent, the document
# must say so for that answer (openapi-core checks the value of each it names).
DESCRIBED_HEADERS = {
    "location",
    "retry-after",
    "www-authenticate",
    "idempotent-replayed",
    "x-request-id",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
}


class Answers:
    """The client's requests; each answer checked against the document as it comes in."""

    def __init__(self, client):
        self.client = client
        self.document = client.get("/openapi.json").json()
        # openapi-core reads JSON bodies itself; a CSV is text.
        config = Config(extra_media_type_deserializers={"text/csv": as_text})
        self.api = OpenAPI.from_dict(self.document, config=config)
        self.statuses = set()
        self.problems = []

    def request(self, method, path, **kwargs):
        response = self.client.request(method, path, **kwargs)
        self.statuses.add(response.status_code)
        where = f"{method} {path} -> {response.status_code}"
        for error in self.api.iter_response_errors(
            RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response)
        ):
            self.problems.append(f"{where}: {error!r} {error.__cause__!r}")
        # Errors may add details of their own to the shared shape (`existing_id`...).
        if response.ok and response.headers.get("Content-Type") == "application/json":
            schema = self.schema_of(method, path, response.status_code)
            for field in undocumented(response.json(), schema, self.document):
                self.problems.append(f"{where}: {field} is not in the document")
        documented = self.response_of(method, path, response.status_code).get("headers", {})
        documented = {name.lower() for name in documented}  # HTTP's names ignore case
        for name in response.headers:
            if name.lower() in DESCRIBED_HEADERS and name.lower() not in documented:
                self.problems.append(f"{where}: the header {name} is not in the document")
        return response

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, body, **kwargs):
        return self.request("POST", path, json=body, **kwargs)

    def patch(self, path, body, **kwargs):
        return self.request("PATCH", path, json=body, **kwargs)

    def response_of(self, method, path, status):
        path = path.split("?")[0]
        templates = [
            template
            for template in self.document["paths"]
            if re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", template), path)
        ]
        # A path of its own before a template: /customers/duplicates, not /customers/{id}.
        template = min(templates, key=lambda template: template.count("{"))
        found = self.document["paths"][template][method.lower()]["responses"].get(str(status))
        return resolve(found or {}, self.document)

    def schema_of(self, method, path, status):
        return self.response_of(method, path, status)["content"]["application/json"]["schema"]


def as_text(body, charset="utf-8", **_):
    return body.decode(charset)


def undocumented(value, schema, document, where="body"):
    """Where `value` has fields that `schema` (and the schemas it refers to) does not name."""
    schema = resolve(schema, document)
    for choice in schema.get("allOf", []) + schema.get("anyOf", []):
        choice = resolve(choice, document)
        if choice.get("properties") and isinstance(value, dict):
            schema = choice
    if isinstance(value, list) and "items" in schema:
        for index, item in enumerate(value):
            yield from undocumented(item, schema["items"], document, f"{where}[{index}]")
    elif isinstance(value, dict) and "properties" in schema:
        for key, item in value.items():
            if key not in schema["properties"]:
                yield f"{where}.{key}"
            else:
                yield from undocumented(item, schema["properties"][key], document, f"{where}.{key}")


def resolve(item, document):
    while "$ref" in item:
        *_, kind, name = item["$ref"].split("/")
        item = document["components"][kind][name]
    return item


class Assets(HTMLParser):
    """The URLs of the scripts, style sheets and icons a page loads."""

    def __init__(self):
        super().__init__()
        self.urls = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])
