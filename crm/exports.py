"""The clients CSV export, produced row by row so it streams in flat memory."""

import csv

from django.utils.timezone import localtime

from .formatting import escape_formula, format_money
from .models import Client

HEADER = (
    "id",
    "name",
    "email",
    "phone",
    "vip",
    "created_at",
    "order_count",
    "total_amount",
)
BOM = "\ufeff"
CHUNK_SIZE = 2000
# The admin export's format (import-export's DateTimeWidget): spreadsheets
# read it as a date and time.
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


class _Line:
    """A file-like object whose write() hands back what it was given."""

    def write(self, value):
        return value


def client_rows(query=""):
    """Yield the export's rows (header first) for clients matching ``query``."""
    rows = (
        Client.objects.search(query)
        .with_order_totals()
        .values_list(*HEADER)
        .iterator(chunk_size=CHUNK_SIZE)
    )
    yield HEADER
    for pk, name, email, phone, vip, created_at, count, total in rows:
        yield (
            pk,
            escape_formula(name),
            escape_formula(email),
            escape_formula(phone),
            "1" if vip else "0",
            localtime(created_at).strftime(DATETIME_FORMAT),
            count,
            format_money(total),
        )


def client_csv_chunks(query=""):
    """Yield the export as CSV text: a UTF-8 BOM, the header, then the clients.

    The BOM makes Excel read the file as UTF-8 (non-ASCII names); LibreOffice
    and our import accept it too. Rows go out in chunks of ``CHUNK_SIZE``
    lines, as they come from the database cursor.
    """
    writer = csv.writer(_Line())
    lines = [BOM]
    for row in client_rows(query):
        lines.append(writer.writerow(row))
        if len(lines) >= CHUNK_SIZE:
            yield "".join(lines)
            lines.clear()
    if lines:
        yield "".join(lines)
