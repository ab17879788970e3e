"""Read uploaded CSV files, or refuse them with a message naming the problem and fix."""

import codecs
import csv
import io
import re
from collections import Counter

from .columns import BOM

#: Python's csv module refuses longer cells; we say so in the user's terms.
MAX_CELL = csv.field_size_limit()
MAX_LISTED_ROW_ERRORS = 20

SAVE_AS = (
    "In Excel use Save As → “CSV UTF-8 (Comma delimited)”; in LibreOffice "
    "choose the UTF-8 character set and “,” as the field delimiter."
)
SEPARATORS = {";": "“;” (semicolons)", "\t": "tabs"}


class ImportFileError(Exception):
    """The file as a whole cannot be imported; nothing of it was."""


class ImportRefused(ImportFileError):
    """Some rows were invalid, so nothing was imported (their errors say why)."""


# What a file that is not text at all starts with, and what to call it.
SIGNATURES = (
    (b"PK\x03\x04", "a spreadsheet workbook (.xlsx or .ods) or a zip file"),
    (b"\xd0\xcf\x11\xe0", "an old Excel workbook (.xls)"),
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "an image"),
    (b"\xff\xd8\xff", "an image"),
    (b"GIF8", "an image"),
    (b"\x1f\x8b", "a compressed (gzip) file"),
)


# Bytes no text file has many of (all control characters but tab, LF, CR).
CONTROL_BYTES = [byte for byte in range(32) if byte not in (9, 10, 13)] + [127]


def _refuse_if_not_text(data):
    """Refuse workbooks, images, UTF-16 and other files that are not CSV text."""
    for signature, kind in SIGNATURES:
        if data.startswith(signature):
            raise ImportFileError(f"The file is {kind}, not a CSV file. " + SAVE_AS)
    head = data[:400]
    if data.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)) or (
        b"\x00\x00\x00" in head
    ):
        raise ImportFileError("The file is UTF-32 text, not CSV. " + SAVE_AS)
    utf16 = data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (
        max(head[::2].count(0), head[1::2].count(0)) > len(head) // 4
    )
    if utf16:
        raise ImportFileError(
            "The file is UTF-16 text (Excel's “Unicode Text”), not CSV. " + SAVE_AS
        )
    controls = sum(head.count(byte) for byte in CONTROL_BYTES)
    if controls > len(head) // 10:
        raise ImportFileError("The file is not a text file, so not CSV. " + SAVE_AS)


def _not_utf8(data):
    """Say which line of a file is not UTF-8 (only reached for such a file)."""
    try:
        data.decode("utf-8-sig")
        line = "a line"
    except UnicodeDecodeError as error:
        line = "line {}".format(data[: error.start].count(b"\n") + 1)
    return ImportFileError(
        f"The file is not UTF-8 text ({line} has a character in another encoding, "
        "such as Windows-1252). " + SAVE_AS
    )


def _skipped(line):
    """Tell whether a line before the header carries nothing (Excel leaves some)."""
    bare = line.strip()
    return not bare.strip(",;\t") or re.fullmatch(r"sep=,", bare) is not None


def _separator_problem(header_line):
    """Name the separator of a file whose header is not comma-separated."""
    outside_quotes = "".join(header_line.split('"')[::2])
    commas = outside_quotes.count(",")
    for separator, name in SEPARATORS.items():
        if outside_quotes.count(separator) > commas:
            return f"The file separates its columns with {name}, not commas. " + SAVE_AS
    return None


def clean_headers(headers):
    """Return the header cells as column names: no BOM, no spaces, lowercase."""
    return [str(header or "").replace(BOM, "").strip().lower() for header in headers]


def check_headers(headers, required=()):
    """Refuse a header row that cannot describe the file's columns."""
    if not headers or not any(headers):
        raise ImportFileError("The file is empty: it needs a header row.")
    blank = [str(n) for n, header in enumerate(headers, 1) if not header]
    if blank:
        raise ImportFileError(
            f"Column {', '.join(blank)} of the header row has no name. Give every "
            "column a name in the first row, or delete the empty column."
        )
    twice = sorted(h for h, n in Counter(headers).items() if n > 1)
    if twice:
        raise ImportFileError(
            f"The file has the {', '.join(twice)} column twice. Keep one of them."
        )
    missing = [column for column in required if column not in headers]
    if missing:
        raise ImportFileError(
            f"The file has no {', '.join(missing)} column. The first row must name "
            f"the columns, e.g. “{','.join(required)}”."
        )


def _explain(error, line):
    reason = str(error)
    if "field larger than field limit" in reason:
        return (
            f"A cell that starts on line {line} is longer than {MAX_CELL:,} "
            'characters. Shorten it, or check for a quote (") that is never closed.'
        )
    if "unexpected end of data" in reason or "expected after" in reason:
        return (
            f'A quote (") in the row that starts on line {line} is not closed where '
            "the cell ends, so the following rows would run into one cell. Close "
            'the quote, or write a quote inside a cell as "".'
        )
    return f"Line {line} could not be read as CSV ({reason}). " + SAVE_AS


class CsvFile:
    """An uploaded CSV file's rows, read again from its bytes on each pass.

    It stands in for a ``tablib.Dataset`` (``headers``, ``len()``, iteration,
    ``file["column"]``) without holding the rows: a million-row file costs
    its bytes in memory, not a million Python rows. Rows with fewer or more
    cells than the header are padded or cut to its width; ``ragged`` lists
    them (``{row number: cells}``) for the importer to refuse as row errors.
    """

    def __init__(self, data, *, blank_lines, headers, rows, ragged):
        self._data = data
        self._blank_lines = blank_lines
        self.headers = headers
        self._rows = rows
        self.ragged = ragged

    def __len__(self):
        return self._rows

    def _records(self, header=False):
        """Yield ``(first line, cells)`` for each record (after the header)."""
        text = io.TextIOWrapper(
            io.BytesIO(self._data), encoding="utf-8-sig", newline=""
        )
        for _ in range(self._blank_lines):
            text.readline()
        reader = csv.reader(text, strict=True)
        if not header:
            next(reader, None)
        while True:
            line = reader.line_num + 1
            try:
                yield line, next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                raise ImportFileError(_explain(error, line)) from None
            except UnicodeDecodeError:
                raise _not_utf8(self._data) from None

    def __iter__(self):
        width = len(self.headers)
        records = self._records()
        for _ in range(self._rows):
            _line, cells = next(records)
            if len(cells) != width:
                cells = (cells + [""] * width)[:width]
            yield tuple(cells)
        records.close()

    def column(self, name):
        """Yield the values of one column, row by row."""
        index = self.headers.index(name)
        for row in self:
            yield row[index]

    def __getitem__(self, name):
        return list(self.column(name))


def _open(data, required, check):
    """Read a file's header: return a ``CsvFile`` with no rows, and the records."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    _refuse_if_not_text(data)
    text = io.TextIOWrapper(io.BytesIO(data), encoding="utf-8-sig", newline="")
    blank_lines = 0
    try:
        while (line := text.readline()) and _skipped(line):
            blank_lines += 1
    except UnicodeDecodeError:
        raise _not_utf8(data) from None
    if re.fullmatch(r"sep=.", line.strip()):
        line = f"x{line.strip()[4]}y"  # Excel's hint names another separator
    if problem := _separator_problem(line):
        raise ImportFileError(problem)
    file = CsvFile(data, blank_lines=blank_lines, headers=[], rows=0, ragged={})
    records = file._records(header=True)
    _line, header = next(records, (1, []))
    file.headers = clean_headers(header)
    check_headers(file.headers, required)
    if check is not None:
        check(file.headers)
    return file, records


def read_headers(data, required=(), check=None):
    """Return a file's column names, or refuse it by its header: no row is read."""
    file, records = _open(data, required, check)
    records.close()
    return file.headers


def count_lines(data):
    """Return about how many rows a file has (quickly: its line breaks)."""
    breaks = data.count(b"\n") or data.count(b"\r")  # old Macs end lines with CR
    return breaks + (0 if data.endswith((b"\n", b"\r")) else 1) - 1


def read_csv(data, required=(), check=None):
    """Return an uploaded CSV file as a ``CsvFile``, or raise ``ImportFileError``.

    The header row is checked first (``required`` columns, and ``check`` if
    given, which may raise ``ImportFileError`` itself), so a file refused by
    its header is refused before any of its rows is read. Then one pass over
    the rows refuses what no row can be imported from (an unclosed quote, a
    cell too long, another encoding) and counts them. Leading blank lines are
    skipped, trailing empty rows ignored.
    """
    file, records = _open(data, required, check)
    width, last, ragged = len(file.headers), 0, {}
    for number, (_line, cells) in enumerate(records, 1):
        if any(cell.strip() for cell in cells):
            last = number
            if len(cells) != width:
                ragged[number] = len(cells)
    if not last:
        raise ImportFileError(
            "The file has a header row but no rows under it: nothing to import."
        )
    file._rows = last  # trailing empty rows are ignored
    file.ragged = {n: cells for n, cells in ragged.items() if n <= last}
    return file


def row_error_lines(result):
    """Return one 'row N: field: reason' line per problem of an import result."""
    lines = [
        str(error.error)
        for error in result.base_errors
        if not isinstance(error.error, ImportRefused)
    ]
    for number, errors in result.row_errors():
        lines.extend(f"row {number}: {error.error}" for error in errors)
    for row in result.invalid_rows:
        for field, messages in row.field_specific_errors.items():
            lines.extend(f"row {row.number}: {field}: {m}" for m in messages)
        lines.extend(f"row {row.number}: {m}" for m in row.non_field_specific_errors)
    return lines


def refusal_message(result):
    """Say that nothing was imported and why, naming the first rows' errors."""
    lines = row_error_lines(result)
    message = "Nothing was imported: " + "; ".join(lines[:MAX_LISTED_ROW_ERRORS])
    invalid = result.totals.get("invalid", 0)
    if len(lines) > MAX_LISTED_ROW_ERRORS or invalid > len(result.invalid_rows):
        message += f" (and more: {invalid:,} rows have errors in all)"
    return message


def list_numbers(numbers):
    """Return ``4, 7 and 9`` for ``[4, 7, 9]``."""
    numbers = [str(n) for n in numbers]
    return f"{', '.join(numbers[:-1])} and {numbers[-1]}"
