import codecs

import pytest

from crm.models import Client
from crm.spreadsheets import files
from crm.spreadsheets.files import ImportFileError, read_csv
from crm.spreadsheets.resources import ClientResource


def refusal(data, **kwargs):
    with pytest.raises(ImportFileError) as error:
        read_csv(data, **kwargs)
    return str(error.value)


@pytest.mark.parametrize(
    "data",
    [
        b"\nname,email\nAnn,ann@mail.test\n",
        b"\r\n\r\nname,email\r\nAnn,ann@mail.test\r\n",
        b"\xef\xbb\xbf\r\n  \r\nname,email\r\nAnn,ann@mail.test\r\n",
    ],
)
def test_leading_blank_lines_are_skipped(data):
    dataset = read_csv(data, required=("email",))
    assert dataset.headers == ["name", "email"]
    assert list(dataset) == [("Ann", "ann@mail.test")]


def test_header_is_tidied_and_rows_keep_quoted_commas_and_line_breaks():
    data = (
        b"\xef\xbb\xbf Name ,EMAIL\r\n"
        b'"Chen, Bob","b@mail.test"\r\n"Two\r\nlines",t@x.io\r\n'
    )
    dataset = read_csv(data)
    assert dataset.headers == ["name", "email"]
    assert list(dataset) == [("Chen, Bob", "b@mail.test"), ("Two\r\nlines", "t@x.io")]


def test_short_and_long_rows_are_kept_for_row_errors():
    dataset = read_csv(b"name,email,phone\nA,a@x.io\nB,b@x.io,1,extra\nC,c@x.io,2\n")
    assert dataset.ragged == {1: 2, 2: 4}
    assert len(dataset) == 3 and list(dataset)[0] == ("A", "a@x.io", "")


def test_trailing_empty_rows_are_dropped_but_not_inner_ones():
    dataset = read_csv(b"name,email\nA,a@x.io\n,\nB,b@x.io\n,\n\n,,\n")
    assert len(dataset) == 3
    assert dataset.ragged == {}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"\n\r\n  \n", "empty"),
        (b'name,email\nA,"a@x.io\nB,b@x.io\nC,c@x.io\n', "line 2"),
        (b'name,email\nA,"a@x.io\nB,b@x.io\nC,c@x.io\n', "not closed"),
        (b'name,email\nA,"a"x@x.io\n', "not closed"),
        (b"name,,email\nA,,a@x.io\n", "Column 2 of the header row has no name"),
        (b"name,email,\nA,a@x.io,\n", "Column 3 of the header row has no name"),
        (b"name\temail\nA\ta@x.io\n", "tabs"),
        (b"name;email\nA;a@x.io\n", "semicolons"),
        (b"name;email;note\nA;a@x.io;x,y\n", "semicolons"),
        ("name,email\nJosé,j@x.io\n".encode("cp1252"), "not UTF-8"),
        ("name,email\nJosé,j@x.io\n".encode("utf-16"), "UTF-16"),
        ("name,email\nJosé,j@x.io\n".encode("utf-16-le"), "UTF-16"),
        (codecs.BOM_UTF16_BE + "name,email\n".encode("utf-16-be"), "UTF-16"),
        (b"name,email,name\nA,a@x.io,B\n", "name column twice"),
        (b"name,phone\nA,1\n", "no email column"),
    ],
)
def test_files_refused_as_a_whole_say_why(data, reason):
    assert reason in refusal(data, required=("email",))


def test_a_cell_too_long_for_csv_is_named():
    data = b"name,email\n" + b"A" * (files.MAX_CELL + 1) + b",a@x.io\n"
    message = refusal(data)
    assert "line 2" in message and "longer than 131,072 characters" in message


def test_a_file_refused_by_its_header_is_refused_before_any_row_is_read():
    # Reading the rows would stop at the unclosed quote on the last line.
    data = b"foo,bar\n" + b"1,2\n" * 300_000 + b'3,"4\n'
    assert "no email column" in refusal(data, required=("email",))
    assert "not closed" in refusal(data.replace(b"foo", b"email"), required=("email",))


def test_rows_can_be_read_again_and_again():
    dataset = read_csv(b"name,email\nA,a@x.io\nB,b@x.io\n")
    assert list(dataset) == list(dataset) == [("A", "a@x.io"), ("B", "b@x.io")]
    assert dataset["email"] == ["a@x.io", "b@x.io"]


@pytest.mark.django_db
def test_the_client_reader_refuses_by_the_client_columns():
    with pytest.raises(ImportFileError, match="no email column"):
        ClientResource.read_csv(b"\nname,phone\nA,1\n")
    assert not Client.objects.exists()


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00workbook", "spreadsheet workbook"),
        (b"%PDF-1.7\n%\xe2\xe3", "PDF"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image"),
        (b"\x1f\x8b\x08\x00\x00\x00", "compressed"),
        ("name,email\n".encode("utf-32"), "UTF-32"),
        ("name,email\nAnn,a@x.io\n".encode("utf-16-be"), "UTF-16"),
        (bytes(range(256)) * 4, "not a text file"),
    ],
)
def test_files_that_are_not_csv_text_say_what_they_are(data, kind):
    assert kind in refusal(data)


def test_the_line_with_another_encoding_is_named_exactly():
    lines = [b"name,email"] + [b"P %d,p%d@x.io" % (n, n) for n in range(5000)]
    lines[3001] = "Zoë,z@x.io".encode("latin-1")
    assert "line 3002 has a character" in refusal(b"\n".join(lines) + b"\n")


def test_a_wide_header_is_checked_quickly_and_refused_by_name():
    header = ",".join(f"c{n}" for n in range(40_000)) + ",c7"
    assert "c7 column twice" in refusal(header.encode() + b"\n1\n")


@pytest.mark.parametrize(
    "first_lines",
    [b",,,\r\n", b";;\r\n\r\n", b"sep=,\r\n", b"  \r\n,,\r\n"],
)
def test_lines_excel_leaves_before_the_header_are_skipped(first_lines):
    dataset = read_csv(first_lines + b"name,email\r\nAnn,a@x.io\r\n")
    assert dataset.headers == ["name", "email"]


def test_excels_separator_hint_for_semicolons_is_explained():
    assert "semicolons" in refusal(b"sep=;\r\nname;email\r\nAnn;a@x.io\r\n")


def test_a_file_with_only_a_header_is_refused():
    assert "no rows under it" in refusal(b"name,email\r\n\r\n,\r\n")


@pytest.mark.parametrize(
    ("data", "rows"),
    [
        (b"name\nA\nB\n", 2),
        (b"name\rA\rB\r", 2),  # old Mac line ends
        (b"name\r\nA\r\nB", 2),
    ],
)
def test_rows_are_counted_quickly_for_any_line_ending(data, rows):
    assert files.count_lines(data) == rows
