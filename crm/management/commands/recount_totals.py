"""Recount every client's order count and total, or report where they drifted."""

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from crm.totals import drifted_clients, missing_triggers, recount_totals


class Command(BaseCommand):
    help = (
        "Recount the order totals that the admin sorts by and every page shows, "
        "from the orders themselves. With --check, only report clients whose "
        "totals disagree (exit status 1 when any do)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Report drift, change nothing."
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS)

    def handle(self, *args, check, database, **options):
        connection = connections[database]
        if missing := missing_triggers(connection):
            self.stderr.write(
                f"Missing totals triggers: {', '.join(missing)} (see crm/totals.py)."
            )
        drifted = drifted_clients(connection)
        if check:
            if drifted:
                shown = ", ".join(map(str, drifted[:20]))
                more = f" and {len(drifted) - 20} more" if len(drifted) > 20 else ""
                raise CommandError(
                    f"{len(drifted)} clients have wrong totals: ids {shown}{more}."
                )
            self.stdout.write("Every client's totals match its orders.")
            return
        with transaction.atomic(using=database):
            recount_totals(connection)
        self.stdout.write(
            self.style.SUCCESS(
                f"Recounted the totals; {len(drifted)} clients had drifted."
            )
        )
