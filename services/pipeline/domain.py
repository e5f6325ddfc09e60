"""The pipeline's rules: stages, the deal's stage machine, money. No Nameko, no SQL.

A pipeline is an ordered list of open stages, each with a win probability,
followed by two closing stages, `won` and `lost`, that every pipeline has.
A deal is open in one of the open stages until it is won or lost; a closed
deal moves nowhere until it is explicitly reopened.
"""

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from services.pipeline.exceptions import InvalidPipeline, InvalidStageTransition

OPEN, WON, LOST = "open", "won", "lost"
STATUSES = (OPEN, WON, LOST)
# Every pipeline ends with these; their names are reserved.
CLOSING_STAGES = ((WON, Decimal("1")), (LOST, Decimal("0")))
MAX_OPEN_STAGES = 30
MAX_STAGE_NAME = 40
STAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9 _-]*$")

# Money is held in cents: exact on every database, never a float.
CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("1e13")


@dataclass(frozen=True)
class StagePlan:
    """One open stage as a pipeline change asks for it: an existing id keeps its history."""

    name: str
    probability: Decimal
    id: str | None = None


def stage_name(text):
    """Stage names are compared as lower-case words: 'Proposal' is the stage 'proposal'."""
    return " ".join(str(text).split()).lower()


def check_stage_plan(plans):
    """Raise InvalidPipeline unless `plans` is a usable list of open stages."""
    problems = {}
    if not plans:
        problems["stages"] = ["A pipeline needs at least one open stage."]
    if len(plans) > MAX_OPEN_STAGES:
        problems["stages"] = [f"At most {MAX_OPEN_STAGES} open stages."]
    names = [plan.name for plan in plans]
    for index, plan in enumerate(plans):
        errors = []
        if not STAGE_NAME.match(plan.name) or len(plan.name) > MAX_STAGE_NAME:
            errors.append(
                f"Stage names are 1 to {MAX_STAGE_NAME} lower-case letters, digits, "
                "spaces, '-' or '_'."
            )
        if plan.name in dict(CLOSING_STAGES):
            errors.append(f"'{plan.name}' is the closing stage every pipeline has.")
        if names.count(plan.name) > 1:
            errors.append(f"Stage '{plan.name}' is named twice.")
        if not Decimal(0) <= plan.probability <= Decimal(1):
            errors.append("probability is a fraction from 0 to 1.")
        if errors:
            problems[f"stages.{index}"] = errors
    ids = [plan.id for plan in plans if plan.id]
    if len(ids) != len(set(ids)):
        problems["stages"] = ["A stage id is listed twice."]
    if problems:
        raise InvalidPipeline("Invalid stages.", problems)


def changes_pipeline(current_name, current_plans, name=None, plans=None):
    """Whether asking for `name` and `plans` (None: as they are) changes the pipeline.

    `current_plans` are its open stages, in order, as StagePlans with their
    ids. A plan without an id is a new stage, even under an existing name.
    """
    if name is not None and name != current_name:
        return True
    return plans is not None and list(plans) != list(current_plans)


def check_move(status, current_stage, target):
    """A move of an open deal from `current_stage` to the open stage `target` (names)."""
    if status != OPEN:
        raise InvalidStageTransition(
            f"The deal is {status}; reopen it before moving it.",
            details={"deal_status": status, "stage": current_stage},
        )
    if target in dict(CLOSING_STAGES):
        raise InvalidStageTransition(
            f"Close a deal with POST .../{target}, not by moving it to '{target}'.",
            details={"deal_status": status, "stage": current_stage},
        )
    if target == current_stage:
        raise InvalidStageTransition(
            f"The deal is in '{target}' already.",
            details={"deal_status": status, "stage": current_stage},
        )


def check_close(status, outcome, reason=None):
    """Winning or losing an open deal; losing needs a reason."""
    if status != OPEN:
        raise InvalidStageTransition(
            f"The deal is {status} already; reopen it first.", details={"deal_status": status}
        )
    if outcome == LOST and not (reason or "").strip():
        raise InvalidPipeline("A lost deal needs a reason.", {"reason": ["Say why it was lost."]})


def check_reopen(status):
    if status == OPEN:
        raise InvalidStageTransition("The deal is open already.", details={"deal_status": status})


def may_act_for(who, owner):
    """Whether the caller `who` ({"subject", "own_only"}) may act on a deal of `owner`.

    An `own_only` caller (a sales rep) acts only for itself, and a caller
    with no subject is no one's owner, not even of a deal without one.
    """
    if not who["own_only"]:
        return True
    return who["subject"] is not None and owner == who["subject"]


def dwell_seconds(entered_at, left_at):
    """Whole seconds spent in a stage; never negative (clocks of two hosts may disagree)."""
    return max(0, int((left_at - entered_at).total_seconds()))


def to_cents(amount):
    """A decimal amount (text or number) as whole cents; ValueError says what is wrong."""
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        raise ValueError("Not a decimal amount.") from None
    if not value.is_finite():
        raise ValueError("Not a finite amount.")
    if value < 0:
        raise ValueError("An amount is not negative.")
    if value >= MAX_AMOUNT:
        raise ValueError(f"An amount is below {MAX_AMOUNT:,.0f}.")
    if value != value.quantize(CENT):
        raise ValueError("An amount has at most two decimal places.")
    return int(value.quantize(CENT) * 100)


def from_cents(cents):
    """Cents as the decimal text the API and events carry ("1234.50")."""
    return str((Decimal(cents) / 100).quantize(CENT))


def to_basis_points(probability):
    """A probability (a Decimal fraction, at most four places) as basis points."""
    points = Decimal(probability) * 10000
    if points != points.to_integral_value():
        raise ValueError("A probability has at most four decimal places.")
    return int(points)


def probability_of(points):
    """Basis points as the exact probability a StagePlan holds."""
    return Decimal(points).scaleb(-4)


def from_basis_points(points):
    """Basis points as the probability the API and events carry (a float in [0, 1])."""
    return points / 10000


def changes(before, after):
    """{field: [old, new]} of the fields whose value differs."""
    return {
        field: [before.get(field), value]
        for field, value in after.items()
        if before.get(field) != value
    }


# --- erasure ------------------------------------------------------------------------------

ERASED_TITLE = "(erased)"
ERASED_TEXT = "(erased)"
# Free text in deal events that may name or describe the person.
FREE_TEXT = ("title", "reason")


def scrubbed_event(body):
    """A deal event from the log with its free text erased."""
    data = dict(body.get("data") or {})
    for field in FREE_TEXT:
        if data.get(field):
            data[field] = ERASED_TEXT
    if isinstance(data.get("deal"), dict):
        data["deal"] = {**data["deal"], "title": ERASED_TITLE}
    changes = data.get("changes")
    if isinstance(changes, dict) and "title" in changes:
        data["changes"] = {**changes, "title": [ERASED_TITLE, ERASED_TITLE]}
    return {**body, "data": data}
