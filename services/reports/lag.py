"""How far the reports are behind the events: for /ready (through `health`) and metrics.

A view's lag is now minus the `occurred_at` of the newest event applied to it
(its `as_of`, views.ViewState); the reports' lag is the smallest of these,
the time since the newest event applied to any view. Segments are left out:
a recompute marks them fresh without any event. The lag grows while events
wait in the queues, and also while nothing happens at all: read it beside
the queues' depth (metric `crm_consumer_queue_messages`).
"""

from nameko.extensions import DependencyProvider
from sqlalchemy import select

from crm_common import metrics
from crm_common.db import find_database
from crm_common.envelope import utcnow
from services.reports.models import ViewState
from services.reports.segment_view import SEGMENTS_VIEW


def view_lags(session, now):
    """{view: lag in seconds} of every view fed by events that has had one."""
    rows = session.execute(
        select(ViewState.view, ViewState.as_of).where(ViewState.view != SEGMENTS_VIEW)
    ).all()
    return {view: round(max(0.0, (now - as_of).total_seconds()), 3) for view, as_of in rows}


def lag_seconds(session, now):
    """The reports' lag (see the module docstring); None before the first event."""
    lags = view_lags(session, now)
    return min(lags.values()) if lags else None


class LagMetrics(DependencyProvider):
    """Adds `crm_reports_view_lag_seconds{view}` to the service's metrics."""

    def start(self):
        database = find_database(self.container)

        def read():
            with database.session() as session:
                lags = view_lags(session, utcnow())
            return [({"view": view}, lag) for view, lag in sorted(lags.items())]

        metrics.watch(
            self,
            self.container.service_name,
            "crm_reports_view_lag_seconds",
            "Seconds since the newest event applied to each report view occurred.",
            read,
        )

    def stop(self):
        metrics.forget(self)

    def kill(self):
        self.stop()
