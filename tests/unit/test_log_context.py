"""Every line a worker logs carries the id of what it works on, and only its own."""

import json
import logging
from types import SimpleNamespace

import eventlet
from nameko.events import EventHandler
from nameko.rpc import Rpc

from crm_common import logs


def line(message="something happened", **extra):
    record = logging.LogRecord("crm.test", logging.INFO, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return json.loads(logs.JsonFormatter("customers").format(record))


class FakeWorkerContext(SimpleNamespace):
    __hash__ = object.__hash__  # a key of the provider's dict, as nameko's is


def worker_ctx(entrypoint, args=(), data=None):
    return FakeWorkerContext(
        entrypoint=entrypoint, args=args, data=data or {}, service_name="customers"
    )


def test_a_line_carries_the_bound_ids_and_its_own_extra_wins():
    logs.unbind()
    logs.bind(request_id="req-1", event_id=None)
    try:
        assert line()["request_id"] == "req-1"
        assert "event_id" not in line()  # None is not bound
        assert line(request_id="req-2")["request_id"] == "req-2"
    finally:
        logs.unbind()
    assert "request_id" not in line()


def test_an_event_handlers_lines_carry_the_event_id_until_the_worker_ends():
    request_log = logs.RequestLog()
    ctx = worker_ctx(EventHandler("customers", "customer_created"), args=({"event_id": "e-1"},))
    request_log.worker_setup(ctx)
    assert line()["event_id"] == "e-1"
    request_log.worker_teardown(ctx)
    assert "event_id" not in line()


def test_an_rpcs_lines_carry_the_gateways_request_id():
    request_log = logs.RequestLog()
    ctx = worker_ctx(Rpc(), data={"request_id": "req-9"})
    request_log.worker_setup(ctx)
    try:
        assert line()["request_id"] == "req-9"
        assert "event_id" not in line()
    finally:
        request_log.worker_teardown(ctx)


def test_workers_running_at_once_keep_their_own_ids():
    request_log = logs.RequestLog()

    def work(event_id):
        ctx = worker_ctx(EventHandler("pipeline", "deal_won"), args=({"event_id": event_id},))
        request_log.worker_setup(ctx)
        eventlet.sleep(0.01)  # the others run meanwhile
        seen = line()["event_id"]
        request_log.worker_teardown(ctx)
        return seen

    ids = [f"e-{n}" for n in range(5)]
    assert list(eventlet.GreenPool().imap(work, ids)) == ids
