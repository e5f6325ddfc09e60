"""What happens to an event its consumer fails: retry after a backoff, dead letter, or queue."""

from datetime import UTC, datetime, timedelta

import pytest
from marshmallow import ValidationError
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError
from sqlalchemy.orm.exc import StaleDataError

from crm_common import dead_letters
from crm_common.dead_letters import DEAD, RETRYING, Consumer, RetryPolicy
from crm_common.envelope import InvalidEvent, make_envelope
from crm_common.errors import NotFound, ValidationFailed
from services.customers.models import DeadLetter
from tests.support.fakes import database_for

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=4, retry_seconds=2)
CONSUMER = Consumer("apply_segment_changed", "reports", "segment_changed")


@pytest.mark.parametrize(
    ("failure", "kind"),
    [
        (InvalidEvent("invalid event"), "invalid"),
        (ValidationError({"to_segment": ["Missing data for required field."]}), "invalid"),
        (OperationalError("UPDATE", {}, Exception("deadlock detected")), "transient"),
        (InterfaceError("SELECT", {}, Exception("connection already closed")), "transient"),
        (IntegrityError("INSERT", {}, Exception("duplicate key")), "transient"),
        (StaleDataError("expected to update 1 row(s)"), "transient"),
        (TimeoutError("the neighbour did not answer"), "transient"),
        (RuntimeError("unforeseen"), "transient"),
        (DataError("INSERT", {}, Exception("value too long")), "permanent"),
        (KeyError("deal"), "permanent"),
        (TypeError("'NoneType' object is not subscriptable"), "permanent"),
        (ZeroDivisionError("division by zero"), "permanent"),
    ],
)
def test_each_failure_is_classified_by_whether_trying_again_can_change_it(failure, kind):
    assert dead_letters.classify(failure) == kind


def test_errors_that_may_pass_wait_twice_as_long_each_time_then_die():
    waits = []
    for attempts in (1, 2, 3):
        status, at = POLICY.decide("transient", attempts, NOW)
        assert status == RETRYING
        waits.append((at - NOW).total_seconds())
    assert waits == [2, 4, 8]
    assert POLICY.decide("transient", 4, NOW) == (DEAD, None)


def test_the_wait_is_capped_at_five_minutes():
    status, at = RetryPolicy(max_attempts=50, retry_seconds=2).decide("transient", 30, NOW)
    assert (status, at - NOW) == (RETRYING, timedelta(seconds=300))


@pytest.mark.parametrize("kind", ["invalid", "permanent"])
def test_errors_that_never_pass_die_on_the_first_failure(kind):
    assert POLICY.decide(kind, 1, NOW) == (DEAD, None)


def test_one_attempt_means_no_retry():
    assert RetryPolicy(max_attempts=1, retry_seconds=2).decide("transient", 1, NOW) == (DEAD, None)


@pytest.fixture
def database(make_db_url):
    url = make_db_url("sqlite", "customers", schema="customers")
    database = database_for(url)
    yield database
    database.engine.dispose()


def segment_changed(customer_id="c-1"):
    return make_envelope(
        event_type="segment_changed",
        producer="reports",
        aggregate_id=customer_id,
        sequence=1,
        data={"customer_id": customer_id, "from_segment": None, "to_segment": "regular"},
    )


def record(database, body, exc, now=NOW):
    with database.session() as session:
        return dead_letters.record_failure(session, DeadLetter, body, CONSUMER, exc, POLICY, now)


def test_an_entry_is_keyed_by_event_id_or_by_the_body_it_came_with():
    body = segment_changed()
    assert dead_letters.message_key(body) == body["event_id"]
    assert dead_letters.message_key({"a": 1, "b": 2}) == dead_letters.message_key({"b": 2, "a": 1})
    assert dead_letters.message_key({"event_id": "x"}) != dead_letters.message_key(
        {"event_id": "y"}
    )
    assert len(dead_letters.message_key(["not", "an", "object"])) == 64


def test_two_runners_never_hold_one_entry_and_a_dead_runners_claim_expires(database):
    letter = record(database, segment_changed(), RuntimeError("boom"))
    with database.session() as first, database.session() as second:
        assert dead_letters.claim(first, DeadLetter, letter.id, NOW) is not None
        assert dead_letters.claim(second, DeadLetter, letter.id, NOW) is None
        later = NOW + timedelta(seconds=dead_letters.CLAIM_SECONDS + 1)
        assert dead_letters.claim(second, DeadLetter, letter.id, later) is not None


def test_only_entries_whose_backoff_is_over_and_nobody_holds_are_due(database):
    waiting = record(database, segment_changed("c-1"), RuntimeError("boom"))
    record(database, segment_changed("c-2"), KeyError("dead at once"))
    with database.session() as session:
        assert dead_letters.due(session, DeadLetter, NOW) == []
        after_backoff = NOW + timedelta(seconds=2)
        assert dead_letters.due(session, DeadLetter, after_backoff) == [waiting.id]
        dead_letters.claim(session, DeadLetter, waiting.id, after_backoff)
        assert dead_letters.due(session, DeadLetter, after_backoff) == []


def test_a_retry_that_fails_again_waits_longer_and_dies_at_the_last_attempt(database):
    letter = record(database, segment_changed(), RuntimeError("boom"))
    with database.session() as session:
        for attempts, status in ((2, RETRYING), (3, RETRYING), (4, DEAD)):
            letter = dead_letters.settle(
                session, DeadLetter, letter.id, RuntimeError(f"boom {attempts}"), POLICY, True, NOW
            )
            assert (letter.attempts, letter.status) == (attempts, status)
            assert letter.error == f"RuntimeError: boom {attempts}"
            assert letter.claimed_until is None
        assert letter.next_attempt_at is None


def test_a_replay_that_fails_is_dead_again_with_the_new_error_and_one_that_works_is_gone(
    database,
):
    letter = record(database, segment_changed(), RuntimeError("boom"))
    with database.session() as session:
        again = dead_letters.settle(session, DeadLetter, letter.id, KeyError("x"), POLICY, False)
        assert (again.status, again.kind, again.attempts) == (DEAD, "permanent", 2)
        assert again.error == "KeyError: 'x'"
        assert dead_letters.settle(session, DeadLetter, letter.id, None, POLICY, False) is None
        with pytest.raises(NotFound):
            dead_letters.get(session, DeadLetter, letter.id)


def test_a_failed_run_whose_entry_was_discarded_meanwhile_records_nothing(database):
    letter = record(database, segment_changed(), RuntimeError("boom"))
    with database.session() as session:
        dead_letters.claim(session, DeadLetter, letter.id, NOW)
        # The run outlives its claim, and an admin discards the entry meanwhile.
        later = NOW + timedelta(seconds=dead_letters.CLAIM_SECONDS + 1)
        assert dead_letters.discard(session, DeadLetter, letter.id, later)
        failed = dead_letters.settle(
            session, DeadLetter, letter.id, RuntimeError("again"), POLICY, True, later
        )
        assert failed is None
        with pytest.raises(NotFound):
            dead_letters.get(session, DeadLetter, letter.id)


def test_the_list_pages_oldest_first_filters_and_counts(database):
    ids = [
        record(database, segment_changed(f"c-{n}"), KeyError("x"), NOW + timedelta(seconds=n)).id
        for n in range(3)
    ]
    record(database, {"not": "an event"}, RuntimeError("y"), NOW + timedelta(seconds=9))
    with database.session() as session:
        first = dead_letters.page(session, DeadLetter, {"status": "dead", "limit": 2})
        assert [item["id"] for item in first["items"]] == ids[:2]
        assert "body" not in first["items"][0]
        rest = dead_letters.page(
            session, DeadLetter, {"status": "dead", "cursor": first["next_cursor"]}
        )
        assert [item["id"] for item in rest["items"]] == ids[2:]
        assert rest["next_cursor"] is None
        assert dead_letters.counts(session, DeadLetter) == {
            "retrying": 1,
            "dead": 3,
            "oldest_failed_at": NOW.isoformat(),
        }
        for query in ({"status": "lost"}, {"cursor": "forged"}, {"limit": 0}, {"sort": "x"}):
            with pytest.raises(ValidationFailed):
                dead_letters.page(session, DeadLetter, query)
        for letter_id in ("not-a-uuid", "0b7e7dd0-0000-4000-8000-000000000000"):
            with pytest.raises(NotFound):
                dead_letters.get(session, DeadLetter, letter_id)


def test_an_entry_a_retry_holds_is_not_discarded_until_its_claim_expires(database):
    letter = record(database, segment_changed(), RuntimeError("boom"))
    with database.session() as session:
        dead_letters.claim(session, DeadLetter, letter.id, NOW)
        assert not dead_letters.discard(session, DeadLetter, letter.id, NOW)
        assert dead_letters.get(session, DeadLetter, letter.id).attempts == 1
        later = NOW + timedelta(seconds=dead_letters.CLAIM_SECONDS + 1)
        assert dead_letters.discard(session, DeadLetter, letter.id, later)
        with pytest.raises(NotFound):
            dead_letters.get(session, DeadLetter, letter.id)
