"""Search words, duplicate keys and scores, merges: the customers service's rules."""

import pytest

from services.customers import domain


def test_fold_ignores_case_accents_and_spacing():
    assert domain.fold("  Zoë   ÑÚÑEZ ") == "zoe nunez"
    assert domain.fold("Straße") == "strasse"


def test_a_customer_is_found_by_every_word_of_name_company_and_email():
    terms = domain.search_terms("Zoë Núñez", "zoe.nunez@acme-corp.com", "+15550102000", "ACME Corp")
    assert {"zoe", "nunez", "acme", "corp", "acme-corp.com"} <= terms
    # the phone with and without its country code, and its last seven digits
    assert {"15550102000", "5550102000", "0102000"} <= terms
    assert "com" not in terms  # shared by nearly everyone: no use to a search


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("Zoë  nu", ["zoe", "nu"]),
        ("+1 (555) 010", ["1555010"]),
        ("ada@example.com", ["ada", "example", "example.com"]),
        ("ada ada", ["ada"]),
        ("12", ["12"]),  # too short for a phone: a word
    ],
)
def test_query_words(query, terms):
    assert domain.query_terms(query) == terms


def test_company_key_drops_case_punctuation_and_legal_suffix():
    assert domain.company_key("ACME, Inc.") == domain.company_key("acme") == "acme"
    assert domain.company_key("Ltd") == "ltd"  # a suffix alone is the name
    assert domain.company_key(None) is None


def test_name_block_pairs_reordered_and_misspelt_names_in_one_company():
    assert domain.name_block("Jon Smith", "ACME Inc.") == domain.name_block("Smith, John", "acme")
    assert domain.name_block("Jon Smith", "Other") != domain.name_block("Jon Smith", "ACME")
    assert domain.name_block("Jon Smith", None) is None


def profile(**fields):
    return {"name": "Ada Lovelace", "email": None, "phone": None, "company": None, **fields}


@pytest.mark.parametrize(
    ("a", "b", "matched"),
    [
        (profile(email="ada@x.io"), profile(name="A. L.", email="ada@x.io"), ["email"]),
        (profile(phone="+4420794"), profile(name="Someone", phone="+4420794"), ["phone"]),
        (
            profile(company="Engines Ltd"),
            profile(name="Lovelace Ada", company="engines"),
            ["name+company"],
        ),
        (
            profile(company="Engines"),
            profile(name="Ada Lovelase", company="Engines"),
            ["name+company"],
        ),
        (
            profile(email="a@x.io", phone="+4420794"),
            profile(email="a@x.io", phone="+4420794"),
            ["email", "phone"],
        ),
    ],
)
def test_matching_fields_make_a_likely_duplicate(a, b, matched):
    score, fields = domain.match(a, b)
    assert fields == matched
    assert score >= domain.DUPLICATE_THRESHOLD


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (profile(company="Engines"), profile(name="Grace Hopper", company="Engines")),
        (profile(company="Engines"), profile(company="Looms")),  # same name, other company
        (profile(), profile()),  # same name alone is not enough
    ],
)
def test_different_customers_do_not_match(a, b):
    assert domain.match(a, b) == (0.0, [])


def test_more_evidence_scores_higher():
    one, _ = domain.match(profile(phone="+4420794"), profile(phone="+4420794"))
    two, _ = domain.match(
        profile(phone="+4420794", email="a@x"), profile(phone="+4420794", email="a@x")
    )
    assert two > one


def test_best_match_picks_the_likeliest_candidate():
    candidates = [
        {**profile(phone="+4420794"), "id": "by-phone"},
        {**profile(phone="+4420794", email="ada@x.io"), "id": "by-both"},
        {**profile(name="Someone else"), "id": "none"},
    ]
    best, score, fields = domain.best_match(profile(phone="+4420794", email="ada@x.io"), candidates)
    assert best["id"] == "by-both"
    assert domain.best_match(profile(name="Nobody"), candidates[2:]) is None


def full(**fields):
    return domain.new_profile(**{"name": "Ada", **fields})


def test_merge_fills_the_survivors_gaps_and_unites_tags_and_attributes():
    survivor = full(email="ada@x.io", tags=["vip"], attributes={"tier": "gold"})
    first = full(
        name="A. Lovelace",
        email="other@x.io",
        phone="+4420794",
        tags=["math", "vip"],
        attributes={"tier": "silver", "seats": 3},
    )
    second = full(
        company="Engines", owner="sam", tags=["engines"], attributes={"seats": 9, "region": "eu"}
    )
    merged = domain.merged_profile(survivor, [first, second])
    assert merged["name"] == "Ada"  # the survivor keeps what it has
    assert merged["email"] == "ada@x.io"
    assert merged["phone"] == "+4420794"  # and takes what it lacks, first other first
    assert merged["company"] == "Engines"
    assert merged["owner"] == "sam"
    assert merged["tags"] == ["vip", "math", "engines"]
    assert merged["attributes"] == {"tier": "gold", "seats": 3, "region": "eu"}
    assert domain.changes(survivor, merged) == {
        "phone": [None, "+4420794"],
        "company": [None, "Engines"],
        "owner": [None, "sam"],
        "tags": [["vip"], ["vip", "math", "engines"]],
        "attributes": [{"tier": "gold"}, {"tier": "gold", "seats": 3, "region": "eu"}],
    }


def test_changes_list_only_fields_that_differ():
    assert domain.changes(full(status="lead"), {"status": "lead", "owner": "kim"}) == {
        "owner": [None, "kim"]
    }


def test_an_erased_customers_events_keep_no_personal_data():
    body = {
        "event_type": "customer_updated",
        "data": {
            "customer_id": "c-1",
            "changes": {"email": ["a@x.io", "b@x.io"], "status": ["lead", "customer"]},
        },
    }
    created = {
        "event_type": "customer_created",
        "data": {
            "customer_id": "c-1",
            "name": "Ada",
            "email": "a@x.io",
            "status": "lead",
            "tags": ["vip"],
        },
    }
    assert domain.scrubbed_event(body)["data"]["changes"] == {
        "email": [None, None],
        "status": ["lead", "customer"],
    }
    scrubbed = domain.scrubbed_event(created)["data"]
    assert scrubbed == {
        "customer_id": "c-1",
        "name": domain.ERASED_NAME,
        "email": None,
        "status": "lead",
        "tags": [],
    }


def test_merge_never_drops_the_survivors_own_attributes():
    survivor = full(attributes={f"s{n}": n for n in range(50)})
    other = full(attributes={f"o{n}": n for n in range(50)})
    assert domain.merged_profile(survivor, [other])["attributes"] == survivor["attributes"]


def test_a_prefix_range_ends_above_every_longer_word():
    for word in ("ada", "山𠮷", "zzz\uffff"):
        assert word[:1] <= word < domain.term_end(word[:1])
