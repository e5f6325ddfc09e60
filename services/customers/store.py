"""How customers are found in their tables: search, filters, duplicate candidates."""

import itertools

from sqlalchemy import and_, bindparam, delete, exists, func, or_, select, union_all

from crm_common.db import bulk_insert
from services.customers import domain
from services.customers.models import Customer, CustomerTag, CustomerTerm

# Above this many customers sharing one key, a scan compares the first ones
# only: such a group is a data problem of its own, not a list of pairs.
MAX_GROUP = 50
# Bind parameters per IN (...) query, well under every database's limit.
CHUNK = 500
# Above this many carriers, a tag counts as common (see `tagged`).
COMMON_TAG = 2000

ACTIVE = and_(Customer.merged_into.is_(None), Customer.erased_at.is_(None))


def keys_of(profile):
    """The duplicate-detection columns of a (normalized) profile."""
    return {
        "company_key": domain.company_key(profile.get("company")),
        "name_block": domain.name_block(profile.get("name"), profile.get("company")),
    }


def terms_of(profile):
    return domain.search_terms(
        profile["name"], profile.get("email"), profile.get("phone"), profile.get("company")
    )


# A new customer's row, as insert_customers takes it (see new_row).
CUSTOMER_COLUMNS = (
    "id",
    *domain.PROFILE_FIELDS,
    "company_key",
    "name_block",
    "segment_sequence",
    "created_at",
    "updated_at",
    "version",
)


def new_row(customer_id, profile, created_at, updated_at):
    """The row of a new customer with a (normalized) profile, in CUSTOMER_COLUMNS order."""
    keys = keys_of(profile)
    return (
        customer_id,
        *(profile[field] for field in domain.PROFILE_FIELDS),
        keys["company_key"],
        keys["name_block"],
        0,
        created_at,
        updated_at,
        1,  # the version of its customer_created event
    )


def insert_customers(session, rows):
    """Insert new customers' rows (new_row) in one statement, without the ORM's unit of
    work: for a single create that bookkeeping cost more than the insert itself."""
    bulk_insert(session, Customer.__table__, CUSTOMER_COLUMNS, rows)


def unindex(session, customer_id, before):
    """Remove the tag and search rows written for the profile `before`.

    The rows are found by primary key from the words of that profile, which
    spares every insert the upkeep of an index by customer (the costliest
    part of an import). A change to `domain.search_terms` therefore comes
    with a migration that rebuilds the search rows.
    """
    session.execute(delete(CustomerTag).where(CustomerTag.customer_id == customer_id))
    terms = sorted(terms_of(before)) if before else []
    if terms:
        session.execute(
            delete(CustomerTerm).where(
                CustomerTerm.customer_id == customer_id, CustomerTerm.term.in_(terms)
            )
        )


def add_index_rows(session, customers):
    """Tag and search rows for many new customers at once: [(id, profile)]."""
    tags, terms = [], []
    for customer_id, profile in customers:
        tags.extend((customer_id, tag) for tag in profile["tags"])
        terms.extend((term, customer_id) for term in terms_of(profile))
    bulk_insert(session, CustomerTag.__table__, ("customer_id", "tag"), tags)
    bulk_insert(session, CustomerTerm.__table__, ("term", "customer_id"), terms)


def search(session, params, limit=None, after_row=None):
    """Active customers matching the list filters, oldest first: at most `limit` of them."""
    statement = select(Customer).where(ACTIVE)
    for name in ("status", "owner", "segment"):
        if params.get(name):
            statement = statement.where(getattr(Customer, name) == params[name])
    if after_row is not None:
        statement = statement.where(after(*after_row))
    if params.get("tag"):
        statement = statement.where(tagged(session, params["tag"]))
    query = (params.get("q") or "").strip()
    if domain.is_email(query):
        statement = statement.where(Customer.email == domain.normalize_email(query))
    elif query:
        terms = domain.query_terms(query)
        if not terms:  # punctuation alone matches no word, so no customer
            return []
        for term in terms:
            # Every word of the query begins some word of the customer's.
            statement = statement.where(
                Customer.id.in_(
                    select(CustomerTerm.customer_id).where(
                        CustomerTerm.term >= term, CustomerTerm.term < domain.term_end(term)
                    )
                )
            )
    statement = statement.order_by(Customer.created_at, Customer.id)
    return session.scalars(statement if limit is None else statement.limit(limit)).all()


def tagged(session, tag):
    """The tag filter, shaped for how many customers carry the tag.

    A common tag is checked row by row in list order, so a page fills after
    a few rows; a rare one is looked up first, so the list is not scanned.
    """
    [tag] = domain.normalize_tags([tag]) or [""]
    carriers = select(CustomerTag.customer_id).where(CustomerTag.tag == tag)
    common = session.scalar(
        select(func.count()).select_from(carriers.limit(COMMON_TAG + 1).subquery())
    )
    if common > COMMON_TAG:
        return exists().where(CustomerTag.customer_id == Customer.id, CustomerTag.tag == tag)
    return Customer.id.in_(carriers)


def after(created_at, customer_id):
    """Customers after (created_at, id) in list order."""
    return or_(
        Customer.created_at > created_at,
        and_(Customer.created_at == created_at, Customer.id > customer_id),
    )


# What duplicate detection compares of a candidate (domain.match), and its id.
MATCH_COLUMNS = (Customer.id, Customer.name, Customer.email, Customer.phone, Customer.company)
DUPLICATE_KEYS = ("email", "phone", "name_block")
_CANDIDATE_STATEMENTS = {}


def candidates(session, profile, exclude=()):
    """Active customers sharing a duplicate key with `profile`: dicts of MATCH_COLUMNS.

    One statement, a branch per key each with its own limit, so a crowded
    name block can never push an email or phone match out of the answer.
    """
    values = {
        "email": profile.get("email"),
        "phone": profile.get("phone"),
        "name_block": domain.name_block(profile.get("name"), profile.get("company")),
    }
    keys = tuple(key for key in DUPLICATE_KEYS if values[key])
    if not keys:
        return []
    params = {key: values[key] for key in keys}
    if exclude:
        params["exclude"] = list(exclude)
    found = {}
    for row in session.execute(candidates_statement(keys, bool(exclude)), params):
        found.setdefault(row.id, dict(row._mapping))
    return list(found.values())


def candidates_statement(keys, excluding):
    """The statement of `candidates` for the keys a profile has, built once."""
    statement = _CANDIDATE_STATEMENTS.get((keys, excluding))
    if statement is None:
        branches = []
        for key in keys:
            branch = select(*MATCH_COLUMNS).where(ACTIVE, getattr(Customer, key) == bindparam(key))
            if excluding:
                branch = branch.where(Customer.id.not_in(bindparam("exclude", expanding=True)))
            branches.append(branch.order_by(Customer.created_at).limit(MAX_GROUP))
        if len(branches) == 1:
            statement = branches[0]
        else:
            # A branch's own ORDER BY and LIMIT need a subquery of its own (SQLite).
            statement = union_all(*(branch.subquery().select() for branch in branches))
        _CANDIDATE_STATEMENTS[(keys, excluding)] = statement
    return statement


def by_keys(session, column, values):
    """Active customers whose `column` is one of `values`, in chunks."""
    found = []
    values = sorted({value for value in values if value})
    for start in range(0, len(values), CHUNK):
        chunk = values[start : start + CHUNK]
        found.extend(session.scalars(select(Customer).where(ACTIVE, column.in_(chunk))).all())
    return found


BLOCKING_KEYS = ("email", "phone", "name_block")
GROUPS_PER_QUERY = 200


def duplicate_pairs(session, limit, after=None):
    """Likely duplicate pairs among active customers, one group of customers at a time.

    Customers are compared only within a group sharing a blocking key
    (email, then phone, then name block), so the work grows with the groups,
    not with all pairs, and a page reads only the groups it needs: about
    `limit` pairs, then the key to resume after. `after` is such a key,
    (index in BLOCKING_KEYS, value). Returns ([(score, fields, a, b)], next key or None).
    """
    pairs = []
    kind, value = after if after else (0, None)
    while kind < len(BLOCKING_KEYS):
        column = getattr(Customer, BLOCKING_KEYS[kind])
        shared = select(column).where(ACTIVE, column.is_not(None))
        if value is not None:
            shared = shared.where(column > value)
        keys = session.scalars(
            shared.group_by(column)
            .having(func.count() > 1)
            .order_by(column)
            .limit(GROUPS_PER_QUERY)
        ).all()
        if not keys:
            kind, value = kind + 1, None
            continue
        for key in keys:
            pairs.extend(group_pairs(session, kind, column, key))
            if len(pairs) >= limit:
                return pairs, (kind, key)
        value = keys[-1]
    return pairs, None


def group_pairs(session, kind, column, key):
    """The likely pairs in one group, best first; pairs sharing an earlier key are skipped."""
    members = session.scalars(
        select(Customer).where(ACTIVE, column == key).order_by(Customer.created_at).limit(MAX_GROUP)
    ).all()
    found = []
    for first, second in itertools.combinations(members, 2):
        earlier = BLOCKING_KEYS[:kind]
        if any(
            getattr(first, name) and getattr(first, name) == getattr(second, name)
            for name in earlier
        ):
            continue
        score, fields = domain.match(profile_of(first), profile_of(second))
        if score >= domain.DUPLICATE_THRESHOLD:
            found.append((score, fields, first, second))
    return sorted(found, key=lambda pair: -pair[0])


def profile_of(customer):
    return {field: getattr(customer, field) for field in domain.PROFILE_FIELDS}
