"""Records filed under customers follow their merges and erasures, in any order."""

import eventlet
import pytest
from nameko.exceptions import RemoteError
from sqlalchemy import String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from crm_common.customer_refs import (
    CustomerFateMixin,
    UnknownCustomer,
    check_customer,
    current_customer,
    record_erasure,
    record_merge,
    survivor_of,
)
from crm_common.db import make_base, make_engine
from crm_common.envelope import utcnow
from crm_common.errors import Unavailable

Base = make_base()


class Fate(CustomerFateMixin, Base):
    pass


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(8), primary_key=True)
    customer_id: Mapped[str] = mapped_column(String(36))
    text: Mapped[str | None] = mapped_column(String(100))


@pytest.fixture
def session(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path}/refs.db")
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        yield session


def reparent(session, from_ids, to_id):
    for note in session.scalars(select(Note).where(Note.customer_id.in_(from_ids))):
        note.customer_id = to_id


def scrub(session, customer_id):
    for note in session.scalars(select(Note).where(Note.customer_id == customer_id)):
        note.text = None


def owners(session):
    return {note.id: note.customer_id for note in session.scalars(select(Note))}


def merge(session, survivor, *merged):
    record_merge(session, Fate, {"survivor_id": survivor, "merged_ids": list(merged)}, reparent)
    session.commit()


def test_a_merge_moves_records_to_the_survivor_and_repeats_change_nothing(session):
    session.add_all([Note(id="n1", customer_id="a"), Note(id="n2", customer_id="b")])
    merge(session, "b", "a")
    merge(session, "b", "a")
    assert owners(session) == {"n1": "b", "n2": "b"}
    assert current_customer(session, Fate, "a") == "b"


@pytest.mark.parametrize("order", [("ab", "bc"), ("bc", "ab")])
def test_chained_merges_end_at_the_last_survivor_in_either_order(session, order):
    session.add_all([Note(id="n1", customer_id="a"), Note(id="n2", customer_id="b")])
    steps = {"ab": ("b", "a"), "bc": ("c", "b")}
    for step in order:
        merge(session, *steps[step])
    assert owners(session) == {"n1": "c", "n2": "c"}
    assert current_customer(session, Fate, "a") == "c"
    assert current_customer(session, Fate, "b") == "c"
    assert current_customer(session, Fate, "c") == "c"


def test_an_erasure_scrubs_records_and_refuses_new_ones(session):
    session.add(Note(id="n1", customer_id="a", text="called about her divorce"))
    erased_at = utcnow()
    record_erasure(session, Fate, {"customer_id": "a", "erased_at": erased_at}, scrub)
    record_erasure(session, Fate, {"customer_id": "a", "erased_at": erased_at}, scrub)
    session.commit()
    assert session.get(Note, "n1").text is None
    assert session.get(Fate, "a").erased_at == erased_at
    with pytest.raises(UnknownCustomer):
        current_customer(session, Fate, "a")


def test_survivor_of_follows_merges_to_where_records_are_without_locking(session, monkeypatch):
    session.add_all(
        [
            Fate(customer_id="a", merged_into="b"),
            Fate(customer_id="b", merged_into="c"),
            Fate(customer_id="d", merged_into="e"),
            Fate(customer_id="e", erased_at=utcnow()),
        ]
    )
    session.commit()

    def no_locks(*_):
        raise AssertionError("a read takes no lock")

    monkeypatch.setattr("crm_common.customer_refs.lock_for", no_locks)
    assert [survivor_of(session, Fate, customer) for customer in "abcdex"] == list("ccceex")


class FakeCustomers:
    def __init__(self, behaviour):
        self.resolve_customer = behaviour


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ({"id": "b", "state": "active"}, "b"),
        ({"id": None, "state": "missing"}, UnknownCustomer),
        ({"id": "a", "state": "erased"}, UnknownCustomer),
    ],
)
def test_check_customer_names_the_survivor_or_refuses(answer, expected):
    proxy = FakeCustomers(lambda customer_id: answer)
    if isinstance(expected, str):
        assert check_customer(proxy, "a", timeout=1) == expected
    else:
        with pytest.raises(expected) as caught:
            check_customer(proxy, "a", timeout=1)
        assert list(caught.value.fields) == ["customer_id"]


@pytest.mark.parametrize(
    "behaviour",
    [
        lambda customer_id: eventlet.sleep(5),
        lambda customer_id: (_ for _ in ()).throw(RemoteError("OperationalError", "db down")),
    ],
)
def test_check_customer_is_unavailable_when_customers_cannot_answer(behaviour):
    with pytest.raises(Unavailable):
        check_customer(FakeCustomers(behaviour), "a", timeout=0.05)
