import pytest

from services.reports import catchup
from tests.support.fakes import database_for


@pytest.fixture
def session_factory(make_db_url):
    url = make_db_url("sqlite", "reports", schema="reports")
    return database_for(url).session


class FakeLog:
    """A producer's events_since over a list, `page` events at a time."""

    def __init__(self, events, page=2):
        self.events = events
        self.page = page
        self.asked = []

    def __call__(self, cursor):
        self.asked.append(cursor)
        start = int(cursor or 0)
        chunk = self.events[start : start + self.page]
        return {"events": chunk, "next_cursor": str(start + len(chunk))}


def test_follows_the_log_from_the_stored_cursor(session_factory):
    log = FakeLog([{"n": n} for n in range(5)])
    applied = []
    assert catchup.follow_log("customers", log, applied.append, session_factory) == 5
    assert applied == [{"n": n} for n in range(5)]

    log.events.append({"n": 5})
    assert catchup.follow_log("customers", log, applied.append, session_factory) == 1
    assert log.asked[-2:] == ["5", "6"]  # resumed where it stopped, not from the start
    assert applied[-1] == {"n": 5}


def test_a_producer_that_does_not_answer_stops_the_run_quietly(session_factory):
    def down(cursor):
        raise ConnectionError("customers is not running")

    assert catchup.follow_log("customers", down, pytest.fail, session_factory) == 0


def test_schedule_is_due_at_once_then_after_its_interval(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(catchup.time, "monotonic", lambda: now[0])
    schedule = catchup.Schedule(30)
    assert schedule.due() is True
    assert schedule.due() is False
    now[0] += 30
    assert schedule.due() is True
