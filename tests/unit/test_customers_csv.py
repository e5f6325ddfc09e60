import pytest

from services.customers import csvfiles


def read(text, mapping=None):
    return csvfiles.read(text, mapping)


def test_header_names_map_to_fields_case_insensitively_and_bom_is_ignored():
    columns, width, rows, ignored = read(
        "\ufeffName,EMAIL,Tags,attributes.tier,Notes\r\nAda,a@x.io,vip;math,gold,hi\r\n"
    )
    assert columns == [(0, "name"), (1, "email"), (2, "tags"), (3, "attributes.tier")]
    assert ignored == ["Notes"]
    assert width == 5
    [(line, cells)] = rows
    assert line == 2
    assert csvfiles.payload(columns, cells) == {
        "name": "Ada",
        "email": "a@x.io",
        "tags": ["vip", "math"],
        "attributes": {"tier": "gold"},
    }


def test_an_explicit_mapping_names_the_columns():
    columns, *_ = read("Full name,E-mail\nAda,a@x.io\n", {"Full name": "name", "E-mail": "email"})
    assert columns == [(0, "name"), (1, "email")]


def test_line_numbers_count_blank_lines_and_multiline_cells():
    _, _, rows, _ = read('name,company\nAda,"Analytical\nEngines"\n\nGrace,Navy\n')
    assert [line for line, _ in rows] == [2, 5]


def test_empty_cells_give_nothing():
    columns, _, [(_, cells)], _ = read("name,email,phone\nAda,,\n")
    assert csvfiles.payload(columns, cells) == {"name": "Ada"}


@pytest.mark.parametrize(
    ("text", "mapping", "says"),
    [
        ("", None, "empty"),
        ("colour,size\nred,9\n", None, "No column gives the name or the email"),
        ("name,email\nAda,\x00\n", None, "NUL"),
        ('name,email\nAda,"a@x.io\n', None, "Line 2"),
        ("name,email\nAda,a@x.io\n", {"Full name": "name"}, "not in the header"),
        ("name,email\nAda,a@x.io\n", {"name": "nickname"}, "not a field"),
        ("name,Name\nAda,Ada\n", None, "both map to 'name'"),
        ("name\nAda\n", ["name"], "mapping must be an object"),
    ],
)
def test_a_file_that_cannot_be_imported_says_why(text, mapping, says):
    with pytest.raises(csvfiles.FileProblem, match=says):
        read(text, mapping)


def test_too_many_rows_is_refused_before_any_is_used(monkeypatch):
    monkeypatch.setattr(csvfiles, "MAX_ROWS", 3)
    with pytest.raises(csvfiles.FileProblem, match="more than 3 rows"):
        read("name\n" + "Ada\n" * 4)


class Row:
    def __init__(self, **values):
        self.__dict__.update({column: None for column in csvfiles.EXPORT_COLUMNS}, **values)


def test_export_writes_one_row_per_customer_and_defuses_formulas():
    text = csvfiles.export(
        [
            Row(
                id="c-1",
                name='=HYPERLINK("x")',
                phone="+4420794",
                tags=["a", "b"],
                attributes={"tier": "gold"},
            )
        ]
    )
    header, row = text.strip().split("\r\n")
    assert header == ",".join(csvfiles.EXPORT_COLUMNS)
    assert row.startswith('c-1,"\'=HYPERLINK(""x"")",,+4420794,')
    assert 'a;b,"{""tier"": ""gold""}"' in row
