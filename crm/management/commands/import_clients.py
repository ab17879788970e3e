"""Import a (large) client CSV file with the admin's rules, all or nothing."""

from django.core.management.base import BaseCommand, CommandError
from import_export.formats.base_formats import CSV
from tablib import InvalidDimensions

from crm.resources import ClientResource, row_error_lines, unreadable_file_message


class Command(BaseCommand):
    help = (
        "Import clients from a CSV file (UTF-8, with or without BOM) keyed by "
        "email. Any invalid row: nothing is imported and the row errors are listed."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="CSV file with name,email[,phone][,vip]")
        parser.add_argument(
            "--dry-run", action="store_true", help="Check the file, write nothing."
        )

    def handle(self, *args, path, dry_run, **options):
        try:
            with open(path, "rb") as file:
                dataset = CSV(encoding="utf-8-sig").create_dataset(file.read())
        except OSError as error:
            raise CommandError(f"Cannot read {path}: {error.strerror}.") from None
        except (UnicodeError, InvalidDimensions) as error:
            raise CommandError(unreadable_file_message(error)) from None
        result = ClientResource().import_data(dataset, dry_run=dry_run)
        if result.has_errors() or result.has_validation_errors():
            lines = row_error_lines(result)
            raise CommandError("Nothing was imported:\n" + "\n".join(lines))
        totals = result.totals
        self.stdout.write(
            f"{'Checked' if dry_run else 'Imported'}: {totals['new']} new, "
            f"{totals['update']} updated ({len(dataset)} rows)."
        )
