"""When reports recompute segments: not while a backlog drains (the next batches would move
the customers again), yet never held back for long."""

from datetime import UTC, datetime, timedelta

from services.reports.service import SegmentSchedule

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def schedule(interval=5):
    found = SegmentSchedule()
    found.interval = interval
    found.last_run, found.last_inputs, found.last_seconds = None, None, 0.0
    found.deferred_since = None
    return found


def test_a_backlog_defers_the_recompute_until_it_drains():
    found = schedule()
    found.ran(START, inputs=10, seconds=0.2)
    later = START + timedelta(seconds=30)
    assert found.waits(later, behind=True)
    assert found.waits(later + timedelta(seconds=60), behind=True)
    assert not found.waits(later + timedelta(seconds=61), behind=False)


def test_a_backlog_that_never_ends_defers_it_at_most_a_while():
    found = schedule()
    found.ran(START, inputs=10, seconds=0.2)
    first = START + timedelta(seconds=10)
    assert found.waits(first, behind=True)
    assert found.waits(first + SegmentSchedule.DEFER_AT_MOST - timedelta(seconds=1), behind=True)
    assert not found.waits(first + SegmentSchedule.DEFER_AT_MOST, behind=True)
    found.ran(first + SegmentSchedule.DEFER_AT_MOST, inputs=11, seconds=0.2)
    assert found.deferred_since is None  # the next backlog counts its own wait


def test_without_a_backlog_it_waits_only_for_its_pause():
    found = schedule(interval=5)
    assert not found.waits(START, behind=False)  # the first, at start
    found.ran(START, inputs=1, seconds=2.0)  # slow: the pause is 10 times as long
    assert found.waits(START + timedelta(seconds=19), behind=False)
    assert not found.waits(START + timedelta(seconds=20), behind=False)
