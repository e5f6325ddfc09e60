"""Raw events of the pipeline, as the reports consume them: one pipeline and deal lives.

Unit tests load them (`load`); integration tests publish them to the broker.
"""

from datetime import UTC, datetime, timedelta

from crm_common.envelope import load_envelope, make_envelope
from services.reports.service import APPLIERS


def load(body):
    """The envelope the reports' inbox makes of `body`."""
    _, schema = APPLIERS[(body["producer"], body["event_type"])]
    return load_envelope(body, schema())


T0 = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
PIPELINE = "p-1"
STAGES = [
    ("lead", "open"),
    ("qualified", "open"),
    ("proposal", "open"),
    ("won", "won"),
    ("lost", "lost"),
]
IDS = {name: f"s-{name}" for name, _ in STAGES}


def stage_list():
    return [
        {"stage_id": IDS[name], "name": name, "kind": kind, "probability": 0.5, "position": n}
        for n, (name, kind) in enumerate(STAGES)
    ]


def pipeline_body(sequence=1, stages=None):
    body = make_envelope(
        event_type="pipeline_created" if sequence == 1 else "pipeline_changed",
        producer="pipeline",
        aggregate_id=PIPELINE,
        sequence=sequence,
        occurred_at=T0,
        data={
            "pipeline_id": PIPELINE,
            "name": "Sales",
            "is_default": True,
            "stages": stages or stage_list(),
        },
    )
    return body


def life(deal_id, steps, owner="sam", start=T0):
    """Events of a deal created in the first stage of `steps`, then taking each step.

    A step is a stage name (a move), "won", "lost" or ("reopen", stage).
    """
    events, stage, status, at = [], steps[0], "open", start
    events.append(deal_body(deal_id, 1, "deal_created", stage, status, at, owner, start))
    for sequence, step in enumerate(steps[1:], start=2):
        at = at + timedelta(hours=sequence)
        came_from, dwell = stage, 3600 * sequence
        if step in ("won", "lost"):
            stage, status, kind = step, step, f"deal_{step}"
            extra = {"from_stage_id": IDS[came_from], "dwell_seconds": dwell}
        elif isinstance(step, tuple):
            stage, status, kind = step[1], "open", "deal_reopened"
            extra = {
                "from_stage_id": IDS[came_from],
                "to_stage_id": IDS[stage],
                "dwell_seconds": dwell,
            }
        else:
            stage, kind = step, "deal_stage_changed"
            extra = {
                "from_stage_id": IDS[came_from],
                "to_stage_id": IDS[stage],
                "dwell_seconds": dwell,
            }
        events.append(deal_body(deal_id, sequence, kind, stage, status, at, owner, start, extra))
    return events


def deal_body(deal_id, sequence, kind, stage, status, at, owner, created, extra=None):
    deal = {
        "deal_id": deal_id,
        "customer_id": "c-1",
        "pipeline_id": PIPELINE,
        "stage_id": IDS[stage],
        "stage": stage,
        "probability": 0.5,
        "status": status,
        "title": "t",
        "amount": "100.00",
        "currency": "EUR",
        "owner": owner,
        "expected_close_date": None,
        "created_at": created.isoformat(),
        "closed_at": at.isoformat() if status != "open" else None,
    }
    body = make_envelope(
        event_type=kind,
        producer="pipeline",
        aggregate_id=deal_id,
        sequence=sequence,
        occurred_at=at,
        data={"deal_id": deal_id, "deal": deal, "by": None, **(extra or {})},
        check=False,
    )
    return body


TICKETS_T0 = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
HOUR = 3600


def ticket_body(ticket_id, sequence, event_type, at, **data):
    body = make_envelope(
        event_type=event_type,
        producer="interactions",
        aggregate_id=ticket_id,
        sequence=sequence,
        occurred_at=at,
        data={
            "ticket_id": ticket_id,
            "customer_id": "c-1",
            "priority": data.pop("priority", "normal"),
            "channel": data.pop("channel", "email"),
            **data,
        },
    )
    return body


def ticket_life(ticket_id, steps, opened_at=TICKETS_T0, agent="kim", channel="email"):
    """The events of a ticket opened at `opened_at` that then takes `steps`.

    A step is (name, hours after opening[, value]): assign (value: agent), respond,
    resolve, close, reopen, breach (value: kind), satisfaction (value: score).
    """
    events = [
        ticket_body(
            ticket_id,
            1,
            "ticket_opened",
            opened_at,
            channel=channel,
            opened_at=opened_at.isoformat(),
            response_due_at=(opened_at + timedelta(hours=4)).isoformat(),
            resolution_due_at=(opened_at + timedelta(hours=24)).isoformat(),
        )
    ]
    assignee, responded, resolutions = None, False, []
    for sequence, (name, hours, *value) in enumerate(steps, start=2):
        at = opened_at + timedelta(hours=hours)
        common = {"channel": channel, "assignee": assignee, "by": agent}
        if name == "assign":
            assignee = value[0] if value else agent
            event = ticket_body(
                ticket_id, sequence, "ticket_assigned", at, **{**common, "assignee": assignee}
            )
        elif name == "respond":
            event = ticket_body(
                ticket_id,
                sequence,
                "ticket_responded",
                at,
                **common,
                first=not responded,
                seconds_since_open=hours * HOUR,
            )
            responded = True
        elif name == "resolve":
            resolutions.append(hours)
            event = ticket_body(
                ticket_id,
                sequence,
                "ticket_resolved",
                at,
                **common,
                resolution_seconds=hours * HOUR,
                survey_due=True,
            )
        elif name in ("close", "reopen"):
            past = {"close": "ticket_closed", "reopen": "ticket_reopened"}[name]
            event = ticket_body(ticket_id, sequence, past, at, **common)
        elif name == "breach":
            event = ticket_body(
                ticket_id, sequence, "ticket_sla_breached", at, **common, kind=value[0]
            )
        else:
            event = ticket_body(
                ticket_id,
                sequence,
                "satisfaction_recorded",
                at,
                satisfaction_id=f"sat-{ticket_id}",
                score=value[0],
                agent=assignee,
                channel=channel,
                recorded_at=at.isoformat(),
            )
        events.append(event)
    return events
