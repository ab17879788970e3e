"""Import a (large) client CSV file with the admin's rules, all or nothing."""

import csv
import io

from django.core.management.base import BaseCommand, CommandError

from crm.spreadsheets.files import ImportFileError, row_error_lines
from crm.spreadsheets.resources import ClientResource


class Command(BaseCommand):
    help = (
        "Import clients from a CSV file (UTF-8, with or without BOM) keyed by "
        "email. Any invalid row: nothing is imported and every row error is listed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file with name,email[,phone][,vip]")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file, write nothing."
        )

    def handle(self, *args, path, dry_run, **options):
        try:
            with open(path, "rb") as file:
                dataset = ClientResource.read_csv(file.read())
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        except ImportFileError as error:
            raise CommandError(str(error)) from None
        result = ClientResource(progress=self.progress).import_data(
            dataset, dry_run=dry_run
        )
        if result.has_errors():
            raise CommandError(
                "Nothing was imported:\n" + "\n".join(row_error_lines(result))
            )
        if result.has_validation_errors():
            raise CommandError(
                "Nothing was imported:\n" + "\n".join(error_lines(result))
            )
        totals = result.totals
        self.stdout.write(
            f"{'Checked' if dry_run else 'Imported'}: {totals['new']} new, "
            f"{totals['update']} updated, {totals['skip']} unchanged "
            f"({len(dataset)} rows)."
        )

    def progress(self, done, total):
        """Print how far the import has come, every 10% of a file of 1,000+ rows."""
        if total >= 1000 and (done == total or done * 10 // total != self._shown):
            self._shown = done * 10 // total
            self.stderr.write(f"  {done:,} of {total:,} rows ({done * 100 // total}%)")

    _shown = -1


def error_lines(result):
    """Return every row error of a result as 'row N: field: reason' lines."""
    rows = csv.reader(io.StringIO(result.errors_csv().removeprefix("\ufeff")))
    next(rows, None)
    return [
        f"row {number}: {field}: {message}" if field else f"row {number}: {message}"
        for number, field, message, *_cells in rows
    ]
