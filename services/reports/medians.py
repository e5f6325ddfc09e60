"""Medians computed by the database, grouped, on PostgreSQL and on SQLite alike.

A median is the middle value, or the mean of the two middle values (as
Python's statistics.median). PostgreSQL has it as `percentile_cont(0.5)`;
SQLite has no such aggregate, so there the rows of each group are numbered
in order by a window function and the middle one or two are averaged.
Either way only the group's medians leave the database, not its rows.
"""

from sqlalchemy import func, or_, select

from crm_common.db import is_postgres


def medians(session, value, conditions, group=None, window=None):
    """{group value: median of `value`} over the rows meeting `conditions`.

    Nulls of `value` are left out; a group with none but nulls is missing.
    Without `group` the one key is None. `window` forces the window-function
    form (the one SQLite runs) on PostgreSQL too, so tests can hold both to
    the same answers; by default each database runs its own.
    """
    if window is None:
        window = not is_postgres(session.get_bind())
    keys = [group] if group is not None else []
    if window:
        query = _window_median(value, conditions, keys)
    else:
        query = (
            select(*keys, func.percentile_cont(0.5).within_group(value))
            .where(*conditions, value.is_not(None))
            .group_by(*keys)
        )
    rows = session.execute(query).all()
    return {(row[0] if keys else None): row[-1] for row in rows if row[-1] is not None}


def _window_median(value, conditions, keys):
    numbered = (
        select(
            *(key.label(f"key_{index}") for index, key in enumerate(keys)),
            value.label("value"),
            func.row_number().over(partition_by=keys or None, order_by=value).label("place"),
            func.count().over(partition_by=keys or None).label("size"),
        )
        .where(*conditions, value.is_not(None))
        .subquery()
    )
    grouped = [numbered.c[f"key_{index}"] for index in range(len(keys))]
    place, size = numbered.c.place, numbered.c.size
    # The middle place of an odd size, the two middle places of an even one.
    middle = or_(place == (size + 1) // 2, place == (size + 2) // 2)
    return select(*grouped, func.avg(numbered.c.value)).where(middle).group_by(*grouped)
