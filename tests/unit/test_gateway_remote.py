import importlib
import inspect
import pkgutil

import eventlet
import pytest
import sqlalchemy.exc
from nameko.exceptions import RemoteError, UnknownService, deserialize, serialize

import crm_common
import services
from crm_common.errors import ServiceError
from gateway.http import ApiError
from gateway.remote import REMOTE_ERRORS, call
from services.customers.exceptions import DuplicateCustomer


def declared_service_errors():
    """Every ServiceError the services' exceptions modules and the shared package declare."""
    modules = [
        module_info.name
        for module_info in pkgutil.walk_packages(services.__path__, "services.")
        if module_info.name.endswith(".exceptions")
    ]
    modules += [f"crm_common.{info.name}" for info in pkgutil.iter_modules(crm_common.__path__)]
    for name in modules:
        module = importlib.import_module(name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(cls, ServiceError)
                and cls is not ServiceError
                and cls.__module__ == module.__name__
            ):
                yield f"{cls.__module__}.{cls.__qualname__}"


def test_every_error_a_service_declares_has_an_http_status():
    declared = set(declared_service_errors())
    assert declared, "the services declare their errors in exceptions.py"
    assert declared <= set(REMOTE_ERRORS)


def test_a_remote_error_arrives_with_status_message_fields_and_details():
    sent = DuplicateCustomer("Duplicate.", {"email": ["Taken."]}, {"existing_id": "c-1"})
    received = deserialize(serialize(sent))
    assert isinstance(received, ApiError)
    assert received.status == 409
    body = received.response().get_json()
    assert body == {
        "error": {
            "code": "CONFLICT",
            "message": "Duplicate.",
            "fields": {"email": ["Taken."]},
            "existing_id": "c-1",
        }
    }


class FakeProxy:
    service_name = "customers"

    def __init__(self, behaviour):
        self.behaviour = behaviour

    def ping(self):
        return self.behaviour()


def test_a_service_that_does_not_answer_in_time_is_503():
    with pytest.raises(ApiError) as caught:
        call(FakeProxy(lambda: eventlet.sleep(5)), "ping", timeout=0.05)
    assert caught.value.status == 503
    assert "did not answer" in caught.value.message


def test_a_service_that_is_not_running_is_503():
    def unknown():
        raise UnknownService("customers")

    with pytest.raises(ApiError) as caught:
        call(FakeProxy(unknown), "ping", timeout=1)
    assert caught.value.status == 503


def test_a_service_bug_is_500_without_its_details():
    def bug():
        raise RemoteError("ZeroDivisionError", "division by zero at line 12")

    with pytest.raises(ApiError) as caught:
        call(FakeProxy(bug), "ping", timeout=1)
    assert caught.value.status == 500
    assert "line 12" not in caught.value.message


@pytest.mark.parametrize(
    "failure",
    [
        sqlalchemy.exc.OperationalError("INSERT ...", {}, Exception("Connection refused")),
        sqlalchemy.exc.InterfaceError("SELECT 1", {}, Exception("connection already closed")),
        sqlalchemy.exc.TimeoutError("QueuePool limit of size 10 overflow 10 reached"),
    ],
)
def test_a_service_whose_database_is_away_is_503_without_its_details(failure):
    """As it arrives from a service: serialized by the service's Nameko, read by the gateway's."""

    def database_away():
        raise deserialize(serialize(failure))

    with pytest.raises(ApiError) as caught:
        call(FakeProxy(database_away), "ping", timeout=1)
    assert caught.value.status == 503
    assert caught.value.message == "The customers service cannot reach its database now."


def test_an_answer_in_time_passes_through():
    assert call(FakeProxy(lambda: {"ok": True}), "ping", timeout=1) == {"ok": True}
