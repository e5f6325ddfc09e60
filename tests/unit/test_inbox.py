import uuid

import eventlet
import eventlet.queue
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import func, select
from sqlalchemy.exc import DataError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from crm_common import dead_letters
from crm_common import inbox as inbox_module
from crm_common.envelope import load_envelope
from crm_common.inbox import apply_many, apply_once
from services.reports import views
from services.reports.models import AppliedEvent, CustomerFact, DeadLetter, ViewState
from services.reports.schemas import CustomerCreatedData
from services.reports.service import apply_customer
from tests.support.fakes import bound_inbox, database_for
from tests.support.streams import customer_created


@pytest.fixture
def database(make_db_url):
    url = make_db_url("sqlite", "reports", schema="reports")
    return database_for(url)


@pytest.fixture
def inbox(database):
    # A service name of its own, so the counters this test moves are its alone.
    inbox = bound_inbox(
        AppliedEvent, DeadLetter, database, service_name=f"test-{uuid.uuid4().hex[:12]}"
    )
    inbox.policy = dead_letters.RetryPolicy(max_attempts=3, retry_seconds=2)
    return inbox


def counted(inbox, metric, event_type, label, value):
    sample = REGISTRY.get_sample_value(
        f"crm_events_{metric}_total",
        {"service": inbox.service, "event_type": event_type, label: value},
    )
    return sample or 0


def count(database, model):
    with database.session() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_an_event_delivered_twice_is_applied_once(inbox, database):
    body = customer_created()
    assert inbox.apply(body, apply_customer, CustomerCreatedData()) is True
    assert inbox.apply(body, apply_customer, CustomerCreatedData()) is False
    assert count(database, CustomerFact) == 1
    assert count(database, AppliedEvent) == 1
    with database.session() as session:
        assert session.get(ViewState, views.CUSTOMERS_VIEW).events_applied == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "applied") == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "repeated") == 1


def test_an_effect_that_fails_leaves_no_trace_so_a_retry_applies_it(database):
    envelope = load_envelope(customer_created(), CustomerCreatedData())

    def failing(session, envelope):
        apply_customer(session, envelope)
        raise RuntimeError("database went away mid-way")

    with database.session() as session, pytest.raises(RuntimeError):
        apply_once(session, AppliedEvent, envelope, failing)
    assert count(database, AppliedEvent) == 0
    assert count(database, CustomerFact) == 0

    with database.session() as session:
        assert apply_once(session, AppliedEvent, envelope, apply_customer) is True
    assert count(database, CustomerFact) == 1


def letters(database):
    with database.session() as session:
        return session.scalars(select(DeadLetter).order_by(DeadLetter.first_failed_at)).all()


def test_an_invalid_event_is_a_dead_letter_at_once_without_effect(inbox, database):
    body = customer_created()
    del body["data"]["status"]
    assert inbox.apply(body, apply_customer, CustomerCreatedData()) is False
    assert inbox.apply({"hello": "world"}, apply_customer) is False
    assert count(database, CustomerFact) == 0
    assert count(database, AppliedEvent) == 0
    invalid_data, not_an_event = letters(database)
    assert (invalid_data.status, invalid_data.kind, invalid_data.attempts) == ("dead", "invalid", 1)
    assert "status" in invalid_data.error
    assert invalid_data.event_id == body["event_id"]
    assert invalid_data.body == body
    assert (not_an_event.status, not_an_event.event_id) == ("dead", None)
    assert not_an_event.body == {"hello": "world"}
    assert counted(inbox, "failed", "customer_created", "reason", "invalid") == 1
    assert counted(inbox, "failed", "unknown", "reason", "invalid") == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "applied") == 0


def test_the_same_message_failing_again_updates_its_one_entry(inbox, database):
    body = {"hello": "world"}
    inbox.apply(body, apply_customer)
    inbox.apply(body, apply_customer)
    [letter] = letters(database)
    assert letter.attempts == 2


@pytest.mark.parametrize(
    "failure",
    [
        # Someone else changed a versioned row between the effect's read and its write.
        StaleDataError("UPDATE statement on table 'deals' expected to update 1 row(s)"),
        # A deadlock or a dropped connection while the database still answers.
        OperationalError("UPDATE view_state", {}, Exception("deadlock detected")),
        RuntimeError("something we did not foresee"),
    ],
)
def test_a_failure_that_may_pass_is_kept_for_a_retry_after_a_backoff(inbox, database, failure):
    def fails(session, envelope):
        apply_customer(session, envelope)
        raise failure

    assert inbox.apply(customer_created(), fails, CustomerCreatedData()) is False
    assert count(database, AppliedEvent) == 0
    assert count(database, CustomerFact) == 0
    [letter] = letters(database)
    assert (letter.status, letter.kind, letter.attempts) == ("retrying", "transient", 1)
    assert type(failure).__name__ in letter.error
    wait = (letter.next_attempt_at - letter.last_failed_at).total_seconds()
    assert wait == pytest.approx(2)
    assert counted(inbox, "failed", "customer_created", "reason", "retry") == 1


@pytest.mark.parametrize(
    "failure",
    [
        DataError("INSERT INTO customer_facts", {}, Exception("value too long")),
        KeyError("segment"),
    ],
)
def test_a_failure_that_never_passes_is_a_dead_letter_at_once(inbox, database, failure):
    def refused(session, envelope):
        raise failure

    assert inbox.apply(customer_created(), refused, CustomerCreatedData()) is False
    assert count(database, AppliedEvent) == 0
    [letter] = letters(database)
    assert (letter.status, letter.kind, letter.next_attempt_at) == ("dead", "permanent", None)
    assert counted(inbox, "failed", "customer_created", "reason", "dead") == 1


def test_when_the_failure_cannot_be_recorded_the_event_goes_back_to_the_queue(
    inbox, database, monkeypatch
):
    """The database is away: an outage, not a bad message. No attempt is counted."""
    monkeypatch.setattr("crm_common.inbox.RETRY_PAUSE_SECONDS", 0)
    down = OperationalError("SELECT 1", {}, Exception("connection refused"))

    def record_fails(*args, **kwargs):
        raise down

    monkeypatch.setattr(dead_letters, "record_failure", record_fails)

    def fails(session, envelope):
        raise down

    with pytest.raises(OperationalError):
        inbox.apply(customer_created(), fails, CustomerCreatedData())
    with pytest.raises(Exception, match="Not a valid"):
        inbox.apply({**customer_created(), "event_id": "nope"}, apply_customer)
    assert count(database, DeadLetter) == 0
    assert counted(inbox, "failed", "customer_created", "reason", "requeued") == 1


def test_a_batch_applies_each_new_event_once_and_skips_those_applied_before(inbox, database):
    first, second = customer_created("c-1"), customer_created("c-2")
    assert inbox.apply(first, apply_customer, CustomerCreatedData())
    batch = [load_envelope(body, CustomerCreatedData()) for body in (first, second, second)]
    with database.session() as session:
        applied = apply_many(session, AppliedEvent, batch, lambda _: apply_customer)
        session.commit()
    assert len(applied) == 1
    assert count(database, AppliedEvent) == 2
    assert count(database, CustomerFact) == 2
    with database.session() as session:
        assert session.get(ViewState, views.CUSTOMERS_VIEW).events_applied == 2


def test_two_deliveries_in_one_group_commit_count_one_applied_and_one_repeat(inbox, database):
    inbox.batch_size, inbox.waiting = 10, eventlet.queue.LightQueue()
    body = customer_created("c-1")
    handlers = [
        eventlet.spawn(inbox.apply, body, apply_customer, CustomerCreatedData()) for _ in range(2)
    ]
    eventlet.sleep(0)  # both wait for the same batch
    committer = eventlet.spawn(inbox._commit_batches)
    try:
        assert sorted(handler.wait() for handler in handlers) == [False, True]
    finally:
        committer.kill()
    assert counted(inbox, "consumed", "customer_created", "outcome", "applied") == 1
    assert counted(inbox, "consumed", "customer_created", "outcome", "repeated") == 1
    assert count(database, CustomerFact) == 1


def test_the_events_of_one_handler_call_share_a_group_commit_and_each_gets_its_outcome(
    inbox, database
):
    schema = CustomerCreatedData()
    good, again, invalid = customer_created("c-1"), customer_created("c-2"), customer_created()
    del invalid["data"]["status"]
    assert inbox.apply(again, apply_customer, schema)  # applied before, alone
    inbox.batch_size, inbox.waiting = 10, eventlet.queue.LightQueue()
    handler = eventlet.spawn(
        inbox.apply_all,
        [(good, apply_customer, schema), (invalid, apply_customer, schema)]
        + [(again, apply_customer, schema)],
    )
    eventlet.sleep(0)
    assert inbox.waiting.qsize() == 2  # every valid event of the call waits for one batch
    committer = eventlet.spawn(inbox._commit_batches)
    try:
        assert handler.wait() == [True, False, False]
    finally:
        committer.kill()
    assert count(database, CustomerFact) == 2
    [letter] = letters(database)
    assert letter.event_id == invalid["event_id"]


def test_the_inbox_is_behind_while_events_are_left_waiting_for_the_group_commit(inbox):
    inbox.batch_size, inbox.waiting = 2, eventlet.queue.LightQueue()
    schema = CustomerCreatedData()
    assert not inbox.behind()
    handlers = [
        eventlet.spawn(inbox.apply, customer_created(f"c-{n}"), apply_customer, schema)
        for n in range(5)
    ]
    eventlet.sleep(0)
    committer = eventlet.spawn(inbox._commit_batches)
    try:
        assert all(handler.wait() for handler in handlers)
        assert inbox.behind()  # five events, batches of two: some waited
        inbox.behind_at -= inbox_module.BEHIND_SECONDS
        assert not inbox.behind()
    finally:
        committer.kill()


def test_a_large_batch_lets_other_green_threads_run_while_it_loads(inbox, monkeypatch):
    inbox.batch_size, inbox.waiting = 100, eventlet.queue.LightQueue()
    schema = CustomerCreatedData()
    items = [(customer_created(f"c-{n}"), apply_customer, schema) for n in range(35)]
    loaded, seen = [], []
    load = inbox._load
    monkeypatch.setattr(inbox, "_load", lambda *args: loaded.append(1) or load(*args))

    def report_read():  # how far the batch's loading was when a read got its turn
        while len(seen) < 3:
            seen.append(len(loaded))
            eventlet.sleep(0)

    reader = eventlet.spawn(report_read)
    handler = eventlet.spawn(inbox.apply_all, items)
    reader.wait()
    handler.kill()
    assert any(0 < count < len(items) for count in seen)


def test_a_handler_call_goes_whole_into_a_group_commit_that_waited_for_events(
    inbox, database, monkeypatch
):
    inbox.batch_size, inbox.waiting = 100, eventlet.queue.LightQueue()
    schema = CustomerCreatedData()
    items = [(customer_created(f"c-{n}"), apply_customer, schema) for n in range(35)]
    commits = []
    monkeypatch.setattr(
        inbox_module,
        "apply_many",
        lambda session, model, envelopes, effect_of: (
            commits.append(len(envelopes)) or apply_many(session, model, envelopes, effect_of)
        ),
    )
    committer = eventlet.spawn(inbox._commit_batches)
    eventlet.sleep(0)  # the commit thread waits for events
    try:
        assert inbox.apply_all(items) == [True] * len(items)
    finally:
        committer.kill()
    # Not its first few events alone (woken at the loading's first turn), the rest after.
    assert commits == [len(items)]
    assert count(database, CustomerFact) == len(items)


def test_a_batch_racing_another_consumer_on_an_event_waits_for_it_and_skips_it(make_db_url):
    database = database_for(make_db_url("postgresql", "reports_race", schema="reports"))
    shared, own = (
        load_envelope(customer_created(customer), CustomerCreatedData()) for customer in ("a", "b")
    )
    with database.session() as first, database.session() as second:
        assert apply_many(first, AppliedEvent, [shared], lambda _: apply_customer) == {
            str(shared["event_id"])
        }
        # The second claims the same id while the first has not committed: it waits.
        racing = eventlet.spawn(
            apply_many, second, AppliedEvent, [own, shared], lambda _: apply_customer
        )
        eventlet.sleep(0.3)
        assert not racing.dead
        first.commit()
        assert racing.wait() == {str(own["event_id"])}  # no error: counted as applied before
        second.commit()
    assert count(database, AppliedEvent) == 2
    with database.session() as session:
        assert session.get(ViewState, views.CUSTOMERS_VIEW).events_applied == 2
