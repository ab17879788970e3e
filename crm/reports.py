"""The monthly order report: a CSV of the month's orders, emailed to the manager."""

import csv
import datetime
import io
import logging
import re

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import Count, Sum
from django.utils import timezone

from .formatting import format_money
from .models import Order, SentReport
from .spreadsheets.columns import Column
from .spreadsheets.export import csv_chunks
from .spreadsheets.widgets import DateTimeWidget, MoneyWidget, TextWidget

logger = logging.getLogger(__name__)

MONTH = re.compile(r"(\d{4})-(\d{2})")

REPORT_COLUMNS = (
    Column("client name", TextWidget(), lookup="client__name"),
    Column("client email", TextWidget(), lookup="client__email"),
    Column("title", TextWidget()),
    Column("amount", MoneyWidget()),
    Column("status", TextWidget()),
    Column("created_at", DateTimeWidget()),
)


class ReportError(ValueError):
    """The report cannot be made as asked (a bad month, no recipients)."""


def parse_month(value):
    """Return the first day of a ``YYYY-MM`` month, or raise ``ReportError``."""
    match = MONTH.fullmatch(str(value or "").strip())
    try:
        if not match:
            raise ValueError
        return datetime.date(int(match[1]), int(match[2]), 1)
    except ValueError:
        raise ReportError(
            f"“{value}” is not a month: write it as YYYY-MM, e.g. 2026-10."
        ) from None


def last_month(today=None):
    """Return the first day of the month before ``today`` (in ``TIME_ZONE``)."""
    today = today or timezone.localdate()
    return (today.replace(day=1) - datetime.timedelta(days=1)).replace(day=1)


def month_bounds(month):
    """Return the month's first moment and the next month's, in ``TIME_ZONE``."""
    zone = timezone.get_default_timezone()
    following = (month + datetime.timedelta(days=32)).replace(day=1)
    return tuple(
        datetime.datetime.combine(day, datetime.time.min, tzinfo=zone)
        for day in (month, following)
    )


def month_orders(month):
    start, end = month_bounds(month)
    return Order.objects.filter(created_at__gte=start, created_at__lt=end).order_by(
        "created_at", "pk"
    )


def order_report_csv(month):
    """Return the month's orders as CSV text, with a total per status and overall."""
    orders = month_orders(month)
    text = "".join(csv_chunks(orders, REPORT_COLUMNS))
    lines = io.StringIO()
    writer = csv.writer(lines)
    totals = orders.order_by().values("status").annotate(n=Count("pk"), s=Sum("amount"))
    by_status = {row["status"]: row for row in totals}
    for status in Order.Status:
        row = by_status.get(status.value, {"n": 0, "s": 0})
        writer.writerow(
            [
                "",
                "",
                f"Total {status.label} ({row['n']} orders)",
                format_money(row["s"]),
                status.value,
                "",
            ]
        )
    count = sum(row["n"] for row in by_status.values())
    total = sum((row["s"] or 0 for row in by_status.values()), 0)
    writer.writerow(["", "", f"Total ({count} orders)", format_money(total), "", ""])
    return text + lines.getvalue(), count


def send_order_report(month=None, *, again=False):
    """Email the month's report (default: last month) once; return its record.

    Idempotent: a month already sent is not sent again (a retried or repeated
    task, or beat restarted), unless ``again``.
    """
    month = month or last_month()
    recipients = list(settings.CRM_REPORT_RECIPIENTS)
    if not recipients:
        raise ReportError(
            "No one to send the report to: set CRM_REPORT_RECIPIENTS "
            "(comma-separated email addresses)."
        )
    SentReport.objects.get_or_create(month=month)
    with transaction.atomic():
        # Two runs for one month (a retry, a restarted beat) queue up here;
        # the second finds the month sent.
        record = SentReport.objects.select_for_update().get(month=month)
        if record.sent_at and not again:
            logger.info("The order report for %s was sent already", month)
            return record, False
        text, count = order_report_csv(month)
        message = EmailMessage(
            subject=f"Mini CRM: orders of {month:%B %Y}",
            body=(
                f"The orders of {month:%B %Y} ({count}), with a total per status, "
                "are in the attached CSV file."
            ),
            to=recipients,
        )
        message.attach(f"orders-{month:%Y-%m}.csv", text, "text/csv")
        message.send()
        record.sent_at = timezone.now()
        record.recipients = ", ".join(recipients)
        record.orders = count
        record.save()
    return record, True
