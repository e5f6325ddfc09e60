"""Customers as CSV: reading an upload into rows, writing an export. No SQL here.

An upload is UTF-8 (with or without a byte-order mark) with a header row.
Columns map to fields by name (case-insensitive: name, email, phone,
company, owner, status, tags; `attributes.<key>` for a custom attribute) or
by an explicit mapping `{"header": "field"}`. Tags in one cell are separated
by `;` or `|`. Anything wrong with the file as a whole raises `FileProblem`
before a single row is used.
"""

import csv
import io
import json
import re

from crm_common.validation import storable
from services.customers import domain

MAX_ROWS = 100_000
FIELDS = ("name", "email", "phone", "company", "owner", "status", "tags")
ATTRIBUTE_PREFIX = "attributes."
TAG_SEPARATOR = re.compile(r"[;|]")
EXPORT_COLUMNS = (
    "id",
    "name",
    "email",
    "phone",
    "company",
    "owner",
    "status",
    "segment",
    "tags",
    "attributes",
    "created_at",
    "updated_at",
)
# Cells starting with these are formulas to a spreadsheet; exports defuse them.
_FORMULA_START = ("=", "@", "\t", "\r")

csv.field_size_limit(1024 * 1024)


class FileProblem(ValueError):
    """The file cannot be imported at all; the message says why."""


def read(text, mapping=None):
    """(columns, rows, ignored headers): columns are (index, target), rows (line, cells)."""
    if text.startswith("\ufeff"):
        text = text[1:]
    if not storable(text):
        raise FileProblem(
            "The file contains NUL characters or unpaired surrogates: it is not a CSV text file."
        )
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem("The file is empty: the first row must name the columns.") from None
    except csv.Error as exc:
        raise FileProblem(f"Line 1 is not valid CSV: {exc}.") from None
    columns, ignored = plan_columns([cell.strip() for cell in header], mapping)
    rows = []
    line = reader.line_num + 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                if len(rows) == MAX_ROWS:
                    raise FileProblem(f"The file has more than {MAX_ROWS} rows; split it.")
                rows.append((line, cells))
            line = reader.line_num + 1
    except csv.Error as exc:
        raise FileProblem(f"Line {line} is not valid CSV: {exc}.") from None
    return columns, len(header), rows, ignored


def plan_columns(header, mapping):
    if mapping is not None:
        if not isinstance(mapping, dict) or not all(
            isinstance(key, str) and isinstance(value, str) for key, value in mapping.items()
        ):
            raise FileProblem('The mapping must be an object of "column": "field".')
        missing = [column for column in mapping if column not in header]
        if missing:
            raise FileProblem(f"Mapped column(s) not in the header: {', '.join(missing)}.")
        wanted = {column: target for column, target in mapping.items()}
    else:
        wanted = {column: column.casefold().replace(" ", "_") for column in header}
    columns, ignored, taken = [], [], {}
    for index, column in enumerate(header):
        target = wanted.get(column)
        if target is None or not is_target(target):
            if mapping is not None and target is not None:
                raise FileProblem(f"Column {column!r} maps to {target!r}, which is not a field.")
            ignored.append(column)
            continue
        if target in taken:
            raise FileProblem(f"Columns {taken[target]!r} and {column!r} both map to {target!r}.")
        taken[target] = column
        columns.append((index, target))
    if "name" not in taken and "email" not in taken:
        raise FileProblem(
            "No column gives the name or the email (the header is: "
            + ", ".join(header)[:300]
            + ")."
        )
    return columns, ignored


def is_target(target):
    if target.startswith(ATTRIBUTE_PREFIX):
        return 0 < len(target) - len(ATTRIBUTE_PREFIX) <= domain.MAX_ATTRIBUTE_KEY
    return target in FIELDS


def payload(columns, cells):
    """The fields a row gives (empty cells give nothing)."""
    data = {}
    for index, target in columns:
        value = cells[index].strip() if index < len(cells) else ""
        if not value:
            continue
        if target == "tags":
            data["tags"] = [tag.strip() for tag in TAG_SEPARATOR.split(value) if tag.strip()]
        elif target.startswith(ATTRIBUTE_PREFIX):
            data.setdefault("attributes", {})[target[len(ATTRIBUTE_PREFIX) :]] = value
        else:
            data[target] = value
    return data


def export(customers):
    """CSV text of `customers` (objects with the export columns as attributes)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for customer in customers:
        writer.writerow([cell(column, getattr(customer, column)) for column in EXPORT_COLUMNS])
    return out.getvalue()


def cell(column, value):
    if value is None:
        return ""
    if column == "tags":
        return ";".join(value)
    if column == "attributes":
        return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""
    if column in ("created_at", "updated_at"):
        return value.isoformat()
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text
