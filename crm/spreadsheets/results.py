"""The outcome of an import: counts of every row, the first rows and errors in full."""

import csv
import tempfile

from import_export.results import Result

from .widgets import escape_formula

#: How many rows and how many invalid rows a result keeps for the preview page.
SHOWN_ROWS = 100


class ImportResult(Result):
    """A result whose size does not grow with the file.

    It counts every row (new, updated, unchanged, invalid), keeps the first
    ``SHOWN_ROWS`` rows and invalid rows for the page, and writes every error
    to ``errors_file``, a CSV (row, column, error, then the row's cells) that
    the admin offers for download and the command line prints.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.errors_file = tempfile.SpooledTemporaryFile(
            max_size=1024 * 1024, mode="w+", encoding="utf-8", newline=""
        )
        self._errors = csv.writer(self.errors_file)
        self._errors_header = False
        self._updates_shown = 0

    def append_row_result(self, row_result):
        # The first rows, and the first updated rows wherever they are: what
        # changes deep in a file must be seen before it is confirmed.
        if (
            len(self.rows) < SHOWN_ROWS
            or row_result.errors
            or (row_result.import_type == "update" and self._updates_shown < SHOWN_ROWS)
        ):
            super().append_row_result(row_result)
        if row_result.import_type == "update":
            self._updates_shown += 1

    def append_invalid_row(self, number, row, validation_error):
        super().append_invalid_row(number, row, validation_error)
        invalid = self.invalid_rows.pop()
        invalid.values = tuple(_short(value) for value in invalid.values)
        self.write_errors(invalid, row)
        if len(self.invalid_rows) < SHOWN_ROWS:
            self.invalid_rows.append(invalid)

    def write_errors(self, invalid, row):
        if not self._errors_header:
            header = ["row", "column", "error", *row.keys()]
            self._errors.writerow([escape_formula(cell) for cell in header])
            self._errors_header = True
        cells = [escape_formula(cell) for cell in row.values()]
        for field, messages in invalid.field_specific_errors.items():
            for message in messages:
                self._errors.writerow([invalid.number, field, message, *cells])
        for message in invalid.non_field_specific_errors:
            self._errors.writerow([invalid.number, "", message, *cells])

    @property
    def unchanged(self):
        return self.totals["skip"]

    def errors_csv(self):
        """Return every error as CSV text (with a BOM for Excel)."""
        self.errors_file.seek(0)
        return "\ufeff" + self.errors_file.read()

    def has_validation_errors(self):
        return bool(self.invalid_rows) or self.totals["invalid"] > 0


def _short(value, limit=200):
    """Cut a long cell for the page (the errors file keeps it whole)."""
    text = "" if value is None else str(value)
    return text if len(text) <= limit else text[:limit] + "…"
