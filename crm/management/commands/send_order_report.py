"""Email the monthly order report now (beat sends it on the 1st by itself)."""

from django.core.management.base import BaseCommand, CommandError

from crm import reports


class Command(BaseCommand):
    help = (
        "Email the orders of a month as CSV to CRM_REPORT_RECIPIENTS (default: "
        "last month). A month already sent is not sent twice unless --again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--month", metavar="YYYY-MM", help="default: last month")
        parser.add_argument(
            "--again", action="store_true", help="send a month that was sent already"
        )

    def handle(self, *args, month, again, **options):
        try:
            month = reports.parse_month(month) if month else reports.last_month()
            self.stdout.write(f"Counting the orders of {month:%Y-%m}…")
            record, sent = reports.send_order_report(month, again=again)
        except reports.ReportError as error:
            raise CommandError(str(error)) from None
        if sent:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Sent the report for {month:%Y-%m} ({record.orders} orders) "
                    f"to {record.recipients}."
                )
            )
        else:
            self.stdout.write(
                f"The report for {month:%Y-%m} was sent already on "
                f"{record.sent_at:%Y-%m-%d %H:%M} to {record.recipients}; nothing "
                "was sent (use --again to send it once more)."
            )
