"""Any report answer as CSV: the rows of its lists, one table.

A report answers JSON with one or more lists of flat rows (`items`, or
`performance` and `forecast`, ...) beside summary fields (`as_of`, totals).
The CSV holds the rows of every list; when there is more than one list, a
first column `section` says which list a row came from. Summary fields that
are not lists are left out: they are one request away in JSON. Nested values
are written as JSON, and cells a spreadsheet would run as a formula are
prefixed with an apostrophe.
"""

import csv
import io
import json

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def report_csv(report):
    sections = {
        key: value
        for key, value in report.items()
        if isinstance(value, list) and all(isinstance(row, dict) for row in value)
    }
    several = len(sections) > 1
    columns = ["section"] if several else []
    for rows in sections.values():
        for row in rows:
            columns += [column for column in row if column not in columns]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for section, rows in sections.items():
        for row in rows:
            values = {**row, "section": section} if several else row
            writer.writerow([cell(values.get(column)) for column in columns])
    return out.getvalue()


def cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if not isinstance(value, str):
        value = json.dumps(value, separators=(",", ":"))
    if value.startswith(FORMULA_START) and not _is_number(value):
        return "'" + value
    return value


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True
