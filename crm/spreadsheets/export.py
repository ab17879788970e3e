"""CSV files written row by row as the database returns them: flat memory."""

import csv

from django.db import transaction

from ..models import Client
from .columns import BOM, CLIENT_COLUMNS, names

CHUNK_SIZE = 2000


class _Line:
    """A file-like object whose write() hands back what it was given."""

    def write(self, value):
        return value


def csv_chunks(queryset, columns):
    """Yield ``queryset`` as CSV text: a UTF-8 BOM, the header, then the rows.

    The BOM makes Excel read the file as UTF-8 (non-ASCII names); LibreOffice
    and our import accept it too. Each cell is written by its column's widget,
    as the admin export writes it. Rows go out in chunks of ``CHUNK_SIZE``
    lines, as they come from the database cursor.
    """
    writers = [column.widget.writer() for column in columns]
    rows = queryset.values_list(*(column.lookup for column in columns))
    line = csv.writer(_Line()).writerow
    lines = [BOM, line(names(columns))]
    # In a transaction PostgreSQL streams the server-side cursor; outside one
    # it must hold, and so first compute, the whole result.
    with transaction.atomic(using=queryset.db):
        for row in rows.iterator(chunk_size=CHUNK_SIZE):
            cells = [write(value) for write, value in zip(writers, row, strict=True)]
            lines.append(line(cells))
            if len(lines) >= CHUNK_SIZE:
                yield "".join(lines)
                lines.clear()
    if lines:
        yield "".join(lines)


def client_csv_chunks(query=""):
    """Yield the clients matching ``query`` as a CSV file (``/clients/export.csv``)."""
    clients = Client.objects.search(query).with_order_totals()
    return csv_chunks(clients, CLIENT_COLUMNS)
