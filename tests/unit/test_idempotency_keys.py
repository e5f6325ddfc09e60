"""Idempotency-Key: what runs, what is kept, what a repeat gets; over a store kept in a dict."""

import json

import pytest
from marshmallow import fields
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request, Response

from gateway.http import ApiError, buffer_body, json_response, read_json
from gateway.idempotency import Claim, fingerprint, idempotent, kept_answer
from gateway.schemas import StrictSchema

SCOPE = "token-digest"


class FakeStore:
    """IdempotencyStore's contract (claim, keep, release) over a dict."""

    def __init__(self):
        self.records = {}

    def claim(self, scope, key, request_hash):
        if (scope, key) in self.records:
            return None, self.records[(scope, key)]
        claim = Claim((scope, key), json.dumps({"request": request_hash}), request_hash)
        self.records[(scope, key)] = claim.record
        return claim, None

    def keep(self, claim, response):
        self.records[claim.redis_key] = json.dumps(kept_answer(claim.request_hash, response))

    def release(self, claim):
        del self.records[claim.redis_key]


class Endpoint:
    """Answers `answers` in turn and counts its runs."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.runs = 0

    def __call__(self):
        self.runs += 1
        return self.answers.pop(0)


def post(body=b'{"name": "Ada"}', key="key-1", path="/api/v1/customers", **kwargs):
    headers = {"Idempotency-Key": key} if key is not None else {}
    kwargs.setdefault("content_type", "application/json")
    builder = EnvironBuilder(method="POST", path=path, data=body, headers=headers, **kwargs)
    request = Request(builder.get_environ())
    request.crm_max_body_bytes = 1024 * 1024
    return request


def created(customer_id="c-1"):
    return json_response(201, {"id": customer_id}, {"Location": f"/api/v1/customers/{customer_id}"})


def test_a_repeat_gets_the_first_answer_without_running_again():
    store, endpoint = FakeStore(), Endpoint(created("c-1"), created("c-2"))
    first = idempotent(store, SCOPE, post(), endpoint)
    again = idempotent(store, SCOPE, post(), endpoint)
    assert endpoint.runs == 1
    assert (again.status_code, again.get_json()) == (201, {"id": "c-1"})
    assert again.headers["Location"] == first.headers["Location"] == "/api/v1/customers/c-1"
    assert again.headers["Content-Type"] == "application/json"
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers


def test_without_a_key_every_request_runs():
    store, endpoint = FakeStore(), Endpoint(created("c-1"), created("c-2"))
    idempotent(store, SCOPE, post(key=None), endpoint)
    idempotent(store, SCOPE, post(key=None), endpoint)
    assert endpoint.runs == 2
    assert store.records == {}


@pytest.mark.parametrize(
    "other",
    [
        post(body=b'{"name": "Grace"}'),
        post(path="/api/v1/customers?allow_duplicate=true"),
        post(path="/api/v1/deals"),
        post(content_type="text/plain"),
    ],
    ids=["body", "query", "path", "content type"],
)
def test_the_key_with_another_request_is_409_and_runs_nothing(other):
    store, endpoint = FakeStore(), Endpoint(created())
    idempotent(store, SCOPE, post(), endpoint)
    with pytest.raises(ApiError) as refused:
        idempotent(store, SCOPE, other, endpoint)
    assert (refused.value.status, refused.value.code) == (409, "IDEMPOTENCY_KEY_REUSED")
    assert endpoint.runs == 1


def test_a_repeat_while_the_first_runs_is_409_in_progress():
    store = FakeStore()

    def first_still_running():
        with pytest.raises(ApiError) as refused:
            idempotent(store, SCOPE, post(), Endpoint(created("c-2")))
        assert (refused.value.status, refused.value.code) == (409, "IDEMPOTENCY_KEY_IN_PROGRESS")
        assert refused.value.headers["Retry-After"] == "1"
        return created("c-1")

    answer = idempotent(store, SCOPE, post(), first_still_running)
    assert answer.get_json() == {"id": "c-1"}


def test_client_errors_are_kept_and_server_errors_free_the_key():
    store = FakeStore()
    invalid = json_response(400, {"error": {"code": "VALIDATION_ERROR", "message": "No."}})
    endpoint = Endpoint(invalid, created())
    assert idempotent(store, SCOPE, post(), endpoint).status_code == 400
    assert idempotent(store, SCOPE, post(), endpoint).status_code == 400
    assert endpoint.runs == 1

    unavailable = json_response(503, {"error": {"code": "SERVICE_UNAVAILABLE", "message": "No."}})
    endpoint = Endpoint(unavailable, created("c-9"))
    assert idempotent(store, SCOPE, post(key="key-2"), endpoint).status_code == 503
    retried = idempotent(store, SCOPE, post(key="key-2"), endpoint)
    assert (retried.status_code, endpoint.runs) == (201, 2)
    assert "Idempotent-Replayed" not in retried.headers


def test_a_request_cut_short_frees_its_key():
    store = FakeStore()

    def killed():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        idempotent(store, SCOPE, post(), killed)
    assert store.records == {}


def test_another_scope_has_keys_of_its_own():
    store, endpoint = FakeStore(), Endpoint(created("c-1"), created("c-2"))
    idempotent(store, "one-token", post(), endpoint)
    other = idempotent(store, "another-token", post(body=b'{"name": "Grace"}'), endpoint)
    assert other.get_json() == {"id": "c-2"}
    assert endpoint.runs == 2


@pytest.mark.parametrize("key", ["", "x" * 256, "clé", "tab\there", "\x7f"])
def test_a_malformed_key_is_400(key):
    with pytest.raises(ApiError) as refused:
        idempotent(FakeStore(), SCOPE, post(key=key), Endpoint(created()))
    assert refused.value.status == 400
    assert "Idempotency-Key" in refused.value.fields


@pytest.mark.parametrize("key", ["k", "x" * 255, "8c7e1f5e-0b0e-4c55-9b43-0f9d2f1c2a11", "a b~!"])
def test_printable_ascii_keys_up_to_255_are_taken(key):
    assert idempotent(FakeStore(), SCOPE, post(key=key), Endpoint(created())).status_code == 201


def test_the_endpoint_reads_the_body_the_key_was_checked_against():
    def reads_its_body():
        return Response(json.dumps(read_json(request, NameSchema())), status=201)

    request = post()
    answer = idempotent(FakeStore(), SCOPE, request, reads_its_body)
    assert json.loads(answer.get_data()) == {"name": "Ada"}


class NameSchema(StrictSchema):
    name = fields.String()


def multipart(boundary, csv=b"name\nAda\n"):
    body = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="customers.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode()
    body += csv + f"\r\n--{boundary}--\r\n".encode()
    return post(
        body=body,
        path="/api/v1/customers/import",
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def hashed(request):
    return fingerprint(request, buffer_body(request))


def test_a_form_sent_again_with_another_boundary_is_the_same_request():
    first = hashed(multipart("aaaa"))
    assert hashed(multipart("bbbbbb")) == first
    assert hashed(multipart("aaaa", csv=b"name\nGrace\n")) != first


def test_the_endpoint_reads_the_uploaded_file_after_the_check():
    request = multipart("aaaa")

    def reads_the_file():
        return Response(request.files["file"].read(), status=200)

    answer = idempotent(FakeStore(), SCOPE, request, reads_the_file)
    assert answer.get_data() == b"name\nAda\n"
