"""The pipeline's rules: the stage machine, stage plans, money."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from services.pipeline import domain
from services.pipeline.exceptions import InvalidPipeline, InvalidStageTransition
from services.pipeline.schemas import DealInput, StageInput


@pytest.mark.parametrize(
    ("status", "current", "target"),
    [
        ("won", "proposal", "negotiation"),
        ("lost", "proposal", "lead"),
        ("open", "proposal", "proposal"),
        ("open", "proposal", "won"),
        ("open", "proposal", "lost"),
    ],
)
def test_a_move_out_of_a_closed_deal_or_into_a_closing_stage_is_refused(status, current, target):
    with pytest.raises(InvalidStageTransition):
        domain.check_move(status, current, target)


def test_an_open_deal_moves_to_any_other_open_stage_backwards_too():
    domain.check_move("open", "proposal", "negotiation")
    domain.check_move("open", "proposal", "lead")


def test_closing_needs_an_open_deal_and_losing_needs_a_reason():
    domain.check_close("open", "won")
    domain.check_close("open", "lost", "Budget cut")
    with pytest.raises(InvalidPipeline):
        domain.check_close("open", "lost", "   ")
    for status in ("won", "lost"):
        with pytest.raises(InvalidStageTransition):
            domain.check_close(status, "won")
        domain.check_reopen(status)
    with pytest.raises(InvalidStageTransition):
        domain.check_reopen("open")


def test_dwell_is_whole_seconds_and_never_negative():
    entered = datetime(2026, 1, 1, tzinfo=UTC)
    assert domain.dwell_seconds(entered, entered + timedelta(days=2, seconds=1.9)) == 172801
    assert domain.dwell_seconds(entered, entered - timedelta(seconds=5)) == 0


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("1234.50", 123450),
        (1234.5, 123450),
        (0, 0),
        ("0.01", 1),
        ("9999999999999.99", 999999999999999),
    ],
)
def test_amounts_are_exact_cents(amount, cents):
    assert domain.to_cents(amount) == cents
    assert Decimal(domain.from_cents(cents)) == Decimal(str(amount))


@pytest.mark.parametrize("amount", ["-0.01", "1.001", "NaN", "Infinity", "1e13", "twelve", ""])
def test_bad_amounts_say_what_is_wrong(amount):
    with pytest.raises(ValueError):
        domain.to_cents(amount)


def test_probabilities_are_basis_points_with_four_places_at_most():
    assert domain.to_basis_points(Decimal("0.25")) == 2500
    assert domain.from_basis_points(2500) == 0.25
    with pytest.raises(ValueError):
        domain.to_basis_points(Decimal("0.12345"))


def plan(name, probability="0.5", stage_id=None):
    return domain.StagePlan(name=name, probability=Decimal(probability), id=stage_id)


@pytest.mark.parametrize(
    "plans",
    [
        [],
        [plan("won")],
        [plan("a"), plan("a")],
        [plan("a", "1.2")],
        [plan("Bad!")],
        [plan("a", stage_id="x"), plan("b", stage_id="x")],
    ],
)
def test_stage_plans_must_be_usable(plans):
    with pytest.raises(InvalidPipeline):
        domain.check_stage_plan(plans)


def test_stage_names_are_words_in_lower_case():
    loaded = StageInput().load({"name": "  Proposal   Sent ", "probability": "0.6"})
    assert loaded == plan("proposal sent", "0.6")
    assert domain.stage_name("NEGOTIATION") == "negotiation"


def test_a_deal_loads_with_exact_money_and_an_upper_case_currency():
    data = DealInput().load(
        {
            "customer_id": "0b5c3d0e-8f7a-4c2e-9d1b-2a3f4e5d6c7b",
            "title": "Engine",
            "amount": "10.10",
            "currency": " eur ",
        }
    )
    assert (data["amount"], data["currency"], data["stage"]) == (1010, "EUR", None)


def test_changes_lists_only_the_fields_that_differ():
    before = {"title": "A", "amount": "1.00", "owner": "sam"}
    assert domain.changes(before, {"title": "A", "amount": "2.00"}) == {"amount": ["1.00", "2.00"]}


DUE = domain.StagePlan("due", domain.probability_of(5000), "s-1")


@pytest.mark.parametrize(
    ("name", "plans", "changes"),
    [
        (None, None, False),
        ("Renewals", None, False),
        (None, [domain.StagePlan("due", Decimal("0.50"), "s-1")], False),
        ("Renewals 2027", None, True),
        (None, [domain.StagePlan("due", Decimal("0.5"))], True),  # a new stage of that name
        (None, [domain.StagePlan("due", Decimal("0.6"), "s-1")], True),
        (None, [DUE, domain.StagePlan("quoted", Decimal("0.7"))], True),
    ],
)
def test_a_pipeline_change_changes_it_only_if_something_differs(name, plans, changes):
    assert domain.changes_pipeline("Renewals", [DUE], name, plans) is changes


def test_erasure_scrubs_free_text_from_a_logged_event():
    body = {
        "event_type": "deal_lost",
        "data": {
            "reason": "She moved",
            "deal": {"title": "Ada's deal", "amount": "1.00"},
            "changes": {"title": ["Ada", "Ada L"]},
        },
    }
    scrubbed = domain.scrubbed_event(body)["data"]
    assert "Ada" not in str(scrubbed) and "She" not in str(scrubbed)
    assert scrubbed["deal"]["amount"] == "1.00"


@pytest.mark.parametrize(
    ("who", "owner", "allowed"),
    [
        ({"subject": "maria", "own_only": False}, "sam", True),
        ({"subject": "sam", "own_only": True}, "sam", True),
        ({"subject": "kim", "own_only": True}, "sam", False),
        ({"subject": None, "own_only": True}, None, False),  # no one owns an ownerless deal
    ],
)
def test_own_only_callers_act_only_for_themselves(who, owner, allowed):
    assert domain.may_act_for(who, owner) is allowed
